"""`hpc-classify demo`, the README's first command, end to end in a subprocess."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sample_corpus"


def sample_rows() -> dict[str, list[dict]]:
    rows = {}
    for path in sorted(SAMPLE.rglob("*.jsonl*")):
        data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
        rows[str(path.relative_to(SAMPLE))] = [json.loads(line) for line in data.decode().splitlines()]
    return rows


def test_demo_classifies_the_sample_corpus_and_says_labels_are_meaningless(tmp_path):
    command = [sys.executable, "-m", "hpc_classify.cli.main", "demo", "--workdir", str(tmp_path / "demo")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEANINGLESS" in done.stdout

    output = tmp_path / "demo" / "labelled"
    for relpath, source in sample_rows().items():
        written = output / relpath
        data = gzip.decompress(written.read_bytes()) if written.suffix == ".gz" else written.read_bytes()
        labelled = [json.loads(line) for line in data.decode().splitlines()]
        assert [{k: v for k, v in row.items() if k != "domain_pred"} for row in labelled] == source
        assert all(isinstance(row["domain_pred"], str) for row in labelled)

    again = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0
    assert json.loads((output / "_summary.json").read_text())["files_processed"] == 0
