"""Parquet reads and assembly bounded in memory and open files, whatever the file's size or part count."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import hpc_classify


def _run(script: str) -> subprocess.CompletedProcess:
    """`script` run in a fresh Python (its own open-files limit, its own memory peak) on this checkout."""
    root = str(Path(hpc_classify.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_assembling_more_parts_than_the_open_files_limit_succeeds(tmp_path):
    # Each part held open at once would exceed the limit (EMFILE), as a file of over a thousand pieces
    # does under a cluster's usual soft limit of 1024.
    parts = []
    for i in range(200):
        path = tmp_path / f"part-{i:04d}.parquet"
        pq.write_table(pa.table({"id": [2 * i, 2 * i + 1], "text": [f"a{i}", f"b{i}"]}), path)
        parts.append(str(path))
    out = tmp_path / "out.parquet"
    script = textwrap.dedent(
        f"""
        import resource, sys
        from hpc_classify.io.formats import PARQUET
        parts = {parts!r}
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        with open({str(out)!r}, "wb") as f:
            PARQUET.assemble(parts, f)
        """
    )
    _run(script)
    got = pd.read_parquet(out)
    assert got["id"].tolist() == list(range(400))
    assert got["text"].tolist() == [f"{c}{i}" for i in range(200) for c in "ab"]


def test_a_small_piece_of_one_huge_row_group_is_read_without_loading_the_row_group(tmp_path):
    # One 80 MB row group: a piece of 1000 rows of it decodes its batches through a bounded buffer, not the
    # whole pre-buffered column chunk (the old reads peaked at about 1.2x the row group's size).
    path = tmp_path / "big.parquet"
    rows = 160_000
    texts = pa.array([f"{i:0500d}" for i in range(rows)]).cast(pa.large_string()).cast(pa.string())
    pq.write_table(
        pa.table({"id": pa.array(range(rows)), "text": texts}), path, row_group_size=rows, compression="none"
    )
    group_bytes = pq.ParquetFile(path).metadata.row_group(0).total_byte_size
    script = textwrap.dedent(
        f"""
        import pyarrow as pa
        from hpc_classify.io.pieces import read_piece
        from hpc_classify.io.rows import Piece
        result = read_piece({str(path)!r}, Piece(0, 100_000, 101_000), text_field="text", on_bad_row="error", columns=None)
        assert result.frame["id"].tolist() == list(range(100_000, 101_000)), result.frame["id"]
        assert result.frame.index[0] == 100_000 and result.frame["text"].iloc[-1] == f"{{100_999:0500d}}"
        print(pa.default_memory_pool().max_memory())
        """
    )
    peak = int(_run(script).stdout.split()[-1])
    assert peak < group_bytes / 2, (peak, group_bytes)
