"""kill -9 of a whole run (driver and workers) while a file is classified in pieces, then the same command:
every document exactly once, in input order, one output, no piece or temp file left."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from driver_support import (
    cli_env,
    output_files,
    read_jsonl,
    run_args,
    run_cli,
    start_cli,
    summary,
    temp_files,
)

from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

PRELOAD = Path(__file__).with_name("piece_kill_preload.py")


def write_input(inputs: Path, fmt: str, ids: list[str]) -> tuple[Path, int]:
    """The file, and piece_bytes giving it about 6 pieces (compressed: of its decompressed bytes)."""
    texts, _ = synthetic_corpus(len(ids), DOMAIN_LABELS, seed=11)
    path = inputs / f"big.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.table({"id": ids, "text": texts}), path, row_group_size=len(ids) // 6)
        return path, path.stat().st_size // 6
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True)).encode()
    path.write_bytes(gzip.compress(data) if fmt.endswith(".gz") else data)
    return path, len(data) // 6


def start_with_kills(tmp_path, model, fmt: str, where: str):
    """A file of 240 documents in about 6 pieces, and its run with the preload set to kill at `where`:
    (the run's arguments, the input, its ids, the output directory, the run's exit status)."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    ids = [f"d{i}" for i in range(240)]
    path, piece_bytes = write_input(inputs, fmt, ids)
    args = run_args(inputs, output, model, "--piece-bytes", str(piece_bytes))
    env = cli_env(
        HPC_CLASSIFY_TEST_KILL_RUN_AT=where,
        HPC_CLASSIFY_TEST_KILL_ONCE=str(tmp_path / "killed-once"),
        DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([str(PRELOAD)]),
    )
    proc = start_cli(args, tmp_path / "first.log", env=env)
    return args, path, ids, output, proc.wait(timeout=600)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet"])
@pytest.mark.parametrize("where", ["piece", "assembly"])
def test_kill_9_during_a_piece_or_the_assembly_then_rerun_is_exactly_once(
    tmp_path, tiny_domain_model, where, fmt
):
    args, path, ids, output, status = start_with_kills(tmp_path, tiny_domain_model, fmt, where)
    assert status == -9, (tmp_path / "first.log").read_text()[-3000:]
    assert not output_files(output), "nothing may sit under a final name after the kill"
    pieces_left = list((output / "_pieces").rglob("*.done"))
    if where == "piece":
        assert len(pieces_left) == 2
    else:  # every piece done: the last one of a streamed file says so
        last = json.loads(max(pieces_left).read_text())
        assert len(pieces_left) == last["extra"]["piece"] + 1 >= 5
        layout = json.loads((output / "_pieces" / f"{path.name}.pieces" / "layout").read_text())
        assert (
            last["extra"].get("last")
            if layout["pieces"] is None
            else len(layout["pieces"]) == len(pieces_left)
        )

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (written,) = output_files(output).values()
    if written.name.endswith(".gz"):  # gzip members, one per piece: read as one stream
        rows = [json.loads(line) for line in gzip.decompress(written.read_bytes()).decode().splitlines()]
    else:
        rows = read_jsonl(written)
    assert [row["id"] for row in rows] == ids
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []


def test_overwrite_after_a_kill_redoes_the_old_runs_pieces(tmp_path, tiny_domain_model):
    """Pieces classified before the kill belong to the old run's fingerprint: a rerun with other settings and
    --overwrite classifies them again (the output once held the old run's rows for them: another column)."""
    args, _, ids, output, status = start_with_kills(tmp_path, tiny_domain_model, "jsonl", "piece")
    assert status == -9, (tmp_path / "first.log").read_text()[-3000:]
    assert len(list((output / "_pieces").rglob("*.done"))) == 2

    rerun = run_cli([*args, "--pred-column", "label", "--overwrite"])

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (written,) = output_files(output).values()
    rows = read_jsonl(written)
    assert [row["id"] for row in rows] == ids
    assert [row for row in rows if "label" not in row or "domain_pred" in row] == []
    assert not (output / "_pieces").exists()


@pytest.mark.parametrize("where", ["worker-after-assembly", "worker-removing-pieces"])
def test_an_assembly_whose_worker_died_after_it_finished_counts_as_done(tmp_path, tiny_domain_model, where):
    """The worker dies once the file is assembled and marked, before its result reaches the driver (its
    pieces removed, or half of them): the task runs again, finds the file's marker instead of its pieces, and
    the file counts as processed, not failed."""
    _, _, ids, output, status = start_with_kills(tmp_path, tiny_domain_model, "jsonl", where)

    log = (tmp_path / "first.log").read_text()
    assert status == 0, log[-3000:]
    # The worker really died (its nanny, in the driver's process, restarts it and says so; the driver's own
    # "left the cluster" needs its watch to look while no worker is connected: timing, not asserted).
    assert "distributed.nanny: Restarting worker" in log, log[-3000:]
    totals = summary(output)
    assert (totals["files_processed"], totals["files_failed"]) == (1, 0)
    assert not (output / "_failures.ndjson").exists() or not (output / "_failures.ndjson").read_text().strip()
    (written,) = output_files(output).values()
    assert [row["id"] for row in read_jsonl(written)] == ids
    assert not (output / "_pieces").exists()
