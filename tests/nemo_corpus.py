"""NeMo Curator 0.7.1's test corpus (tests/test_read_data.py): five files of 100 rows, about 5 kB each."""

from __future__ import annotations

import json

import pandas as pd

NUM_FILES, NUM_RECORDS = 5, 100


def write_jsonl_files(root) -> list[str]:
    """test_0.jsonl .. test_4.jsonl, rows {"id": "id_F_R", "text": "A longish string F_R"}."""
    root.mkdir(exist_ok=True)
    paths = []
    for f in range(NUM_FILES):
        rows = [{"id": f"id_{f}_{r}", "text": f"A longish string {f}_{r}"} for r in range(NUM_RECORDS)]
        path = root / f"test_{f}.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
        paths.append(str(path))
    return paths


def write_parquet_files(root) -> list[str]:
    """test_0.parquet .. test_4.parquet, uncompressed, row groups of 10 rows (to split by), `text` first."""
    root.mkdir(exist_ok=True)
    paths = []
    for f in range(NUM_FILES):
        frame = pd.DataFrame({"text": [f"A string {f}_{r}" for r in range(NUM_RECORDS)]})
        frame["id"] = [f"id_{f}_{r}" for r in range(NUM_RECORDS)]
        path = root / f"test_{f}.parquet"
        frame.to_parquet(path, compression=None, row_group_size=10)
        paths.append(str(path))
    return paths
