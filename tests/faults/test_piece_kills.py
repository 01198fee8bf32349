"""kill -9 of a whole run (driver and workers) while a file is classified in pieces, then the same command:
every document exactly once, in input order, one output, no piece or temp file left."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from driver_support import cli_env, output_files, read_jsonl, run_args, run_cli, start_cli, temp_files

from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

PRELOAD = Path(__file__).with_name("piece_kill_preload.py")


@pytest.mark.parametrize("where", ["piece", "assembly"])
def test_kill_9_during_a_piece_or_the_assembly_then_rerun_is_exactly_once(tmp_path, tiny_domain_model, where):
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    texts, _ = synthetic_corpus(300, DOMAIN_LABELS, seed=11)
    ids = [f"d{i}" for i in range(300)]
    path = inputs / "big.jsonl"
    path.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True)))
    args = run_args(inputs, output, tiny_domain_model, "--piece-bytes", str(path.stat().st_size // 6))
    env = cli_env(
        HPC_CLASSIFY_TEST_KILL_RUN_AT=where, DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([str(PRELOAD)])
    )
    proc = start_cli(args, tmp_path / "killed.log", env=env)
    assert proc.wait(timeout=600) == -9, (tmp_path / "killed.log").read_text()[-3000:]
    assert not output_files(output), "nothing may sit under a final name after the kill"
    layout = json.loads((output / "_pieces" / "big.jsonl" / "layout.json").read_text())
    pieces_left = list((output / "_pieces").rglob("*.done.json"))
    assert len(pieces_left) == (2 if where == "piece" else len(layout["pieces"]))

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (written,) = output_files(output).values()
    assert [row["id"] for row in read_jsonl(written)] == ids
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []
