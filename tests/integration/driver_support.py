"""Helpers for the driver's integration tests (tests/integration/test_driver_*.py): corpora with known
ids, running `hpc-classify` as a subprocess, reading outputs back, and polling with deadlines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpc_classify.io.markers import iter_marker_relpaths
from hpc_classify.io.writers import is_temp_file

CLI = [sys.executable, "-m", "hpc_classify.cli.main"]
RUN_TIMEOUT = 600  # a hang guard, not a speed check: a busy 2-core machine can take minutes


def make_corpus(
    root: Path,
    n_files: int,
    docs_per_file: int,
    *,
    seed: int = 0,
    bad_lines: dict[int, list[str]] | None = None,
) -> dict[str, list[str]]:
    """Write `n_files` JSONL shards (sizes differ so "largest first" is visible); return relpath -> good ids.

    `bad_lines` maps a file index to raw lines appended after its good rows (invalid JSON, no text...).
    """
    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    root.mkdir(parents=True, exist_ok=True)
    expected: dict[str, list[str]] = {}
    for i in range(n_files):
        count = docs_per_file + i % 3
        texts, _labels = synthetic_corpus(count, DOMAIN_LABELS, seed=seed * 1000 + i)
        ids = [f"f{i:03d}-{n}" for n in range(count)]
        lines = [json.dumps({"id": doc_id, "text": text}) for doc_id, text in zip(ids, texts, strict=True)]
        lines += (bad_lines or {}).get(i, [])
        relpath = f"part-{i:03d}.jsonl"
        (root / relpath).write_text("\n".join(lines) + "\n", encoding="utf-8")
        expected[relpath] = ids
    return expected


def group_bytes_for(inputs: Path, files: int) -> str:
    """`--group-bytes` that puts about `files` of the corpus's (similar-sized) files in one task: the stop
    and kill tests need several tasks, which a tiny corpus would otherwise fill with a single group."""
    return str(files * max(path.stat().st_size for path in inputs.iterdir()))


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"UCX_WARN_UNUSED_ENV_VARS": "n", "HPC_CLASSIFY_LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def run_args(inputs: Path, output: Path, model: Path, *extra: str) -> list[str]:
    """`run` with the small-footprint cluster the tests share 2 cores with: 1 worker, 1 thread."""
    return [
        "run",
        "--input", str(inputs),
        "--output", str(output),
        "--model", str(model),
        "--workers", "1",
        "--threads-per-worker", "1",
        "--device", "cpu",
        "--progress-interval", "2",
        *extra,
    ]  # fmt: skip


def run_cli(args: list[str], *, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT):
    return subprocess.run(
        [*CLI, *args], env=env or cli_env(), capture_output=True, text=True, timeout=timeout, check=False
    )


def start_cli(args: list[str], log_path: Path, *, env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `hpc-classify` in its own process group (so the test can kill it and its workers together)."""
    log = open(log_path, "w")  # noqa: SIM115 - closed by the child's exit; the test reads it afterwards
    return subprocess.Popen(
        [*CLI, *args], env=env or cli_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill_group(proc: subprocess.Popen, sig: int = signal.SIGKILL, timeout: float = 60) -> int:
    os.killpg(proc.pid, sig)
    return proc.wait(timeout=timeout)


def wait_for(condition: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.05) -> Any:
    """Poll `condition` until it returns something truthy, or fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def markers(output: Path) -> set[str]:
    return set(iter_marker_relpaths(str(output)))


def output_files(output: Path) -> dict[str, Path]:
    """Final-named output files (no bookkeeping, no temp files, no quarantine): relpath -> path."""
    found = {}
    for path in output.rglob("*"):
        rel = path.relative_to(output)
        bookkeeping = str(rel) in ("failures.jsonl", "_failures.ndjson") or any(
            part.startswith(("_", ".")) for part in rel.parts
        )
        if path.is_file() and not bookkeeping:
            found[str(rel)] = path
    return found


def temp_files(output: Path) -> list[Path]:
    return [p for p in output.rglob("*") if p.is_file() and is_temp_file(p.name)]


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def output_ids(output: Path) -> list[str]:
    """Every document id in every output file (duplicates kept, so 'exactly once' can be checked)."""
    ids: list[str] = []
    for path in output_files(output).values():
        ids.extend(row["id"] for row in read_jsonl(path))
    return ids


def all_ids(expected: dict[str, list[str]]) -> list[str]:
    return sorted(i for ids in expected.values() for i in ids)


def status_json(output: Path, *extra: str) -> dict[str, Any]:
    """`hpc-classify status --output OUTPUT --json [extra...]`, parsed (it must succeed)."""
    result = run_cli(["status", "--output", str(output), "--json", *extra], timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def summary(output: Path) -> dict[str, Any]:
    return json.loads((output / "_summary.json").read_text())
