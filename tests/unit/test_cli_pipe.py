"""`hpc-classify ... | head`: a reader that closes the pipe early ends the output quietly (no traceback)."""

from __future__ import annotations

import subprocess
import sys

# stdout is a pipe whose reader is already gone before anything is written: every write fails (EPIPE).
CLOSED_PIPE = """
import os, sys
read, write = os.pipe()
os.close(read)
os.dup2(write, 1)
from hpc_classify.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def run_into_a_closed_pipe(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CLOSED_PIPE, *argv], capture_output=True, text=True, timeout=120
    )


def planned_output(tmp_path):
    """An output directory whose run has planned one file and finished none."""
    from hpc_classify.driver.plan import list_input_files, write_plan

    corpus, out = tmp_path / "in", tmp_path / "out"
    corpus.mkdir()
    out.mkdir()
    (corpus / "a.jsonl").write_text('{"text": "x"}\n')
    write_plan(str(out), [str(corpus)], list_input_files([str(corpus)], str(out), "jsonl"))
    return out


def test_status_into_a_closed_pipe_ends_with_141_without_a_traceback(tmp_path):
    out = planned_output(tmp_path)
    assert subprocess.run(
        [sys.executable, "-c", CLOSED_PIPE.replace("os.dup2(write, 1)", ""), "status", "--output", str(out)],
        capture_output=True,
        text=True,
    ).stdout  # it does print
    result = run_into_a_closed_pipe("status", "--output", str(out))
    assert (result.returncode, result.stderr) == (141, "")  # 128 + SIGPIPE, as a shell reports it


def test_help_into_a_closed_pipe_ends_quietly():
    result = run_into_a_closed_pipe("run", "--help")
    assert (result.returncode, result.stderr) == (0, "")  # argparse's own help ignores the closed pipe
