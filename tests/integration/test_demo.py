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

    # The README's second and third commands: the command the demo prints, on "your" files, then status.
    printed = done.stdout.split("classify your own JSONL/Parquet files with this model:\n", 1)[
        1
    ].splitlines()[0]
    mine, labelled = tmp_path / "my-files", tmp_path / "my-labelled"
    mine.mkdir()
    (mine / "notes.jsonl").write_text('{"text": "The match ended in a draw."}\n{"text": "Stocks fell."}\n')
    argv = printed.split()[1:]  # after "hpc-classify"
    argv = [
        str(mine) if a == "YOUR_FILES_OR_DIR" else str(labelled) if a == "YOUR_OUTPUT_DIR" else a
        for a in argv
    ]
    cli = [sys.executable, "-m", "hpc_classify.cli.main"]
    own = subprocess.run([*cli, *argv], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert own.returncode == 0, own.stderr[-3000:]
    rows = [json.loads(line) for line in (labelled / "notes.jsonl").read_text().splitlines()]
    assert [row["text"] for row in rows] == ["The match ended in a draw.", "Stocks fell."]
    assert all(isinstance(row["domain_pred"], str) for row in rows)
    status = subprocess.run(
        [*cli, "status", "--output", str(labelled)], capture_output=True, text=True, timeout=120
    )
    assert (
        status.returncode == 0
        and "1 done, 0 remaining (0 of them changed), 0 failed, 0 vanished (of 1 planned by the last run)"
        in status.stdout
    ), status.stdout
