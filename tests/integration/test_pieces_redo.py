"""--on-changed-input redo of a file that the redo cuts into pieces: the new version's documents replace the
old output (the old completion marker is never taken for the new version's), and a redo stopped after some
pieces resumes from them instead of from its first piece."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from driver_support import (
    make_corpus,
    markers,
    output_ids,
    read_jsonl,
    run_args,
    run_cli,
    start_cli,
    summary,
    temp_files,
    wait_for,
)

from hpc_classify.driver import piece_files
from hpc_classify.io.markers import marker_path, read_marker

REL = "part-000.jsonl"


def classify_then_change(
    tmp_path: Path, model: Path, old_docs: int, new_docs: int
) -> tuple[Path, Path, list]:
    """Classify a one-file corpus whole, then regenerate the file with `new_docs` other documents; returns
    (inputs, output, the new version's ids in input order)."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_corpus(inputs, 1, old_docs, seed=1)
    first = run_cli(run_args(inputs, output, model, "--piece-bytes", "0"))
    assert first.returncode == 0, first.stderr[-3000:]
    new = make_corpus(tmp_path / "new", 1, new_docs, seed=2)
    os.replace(tmp_path / "new" / REL, inputs / REL)
    return inputs, output, new[REL]


def done_piece_markers(output: Path) -> dict[int, dict]:
    pieces = Path(piece_files.pieces_dir(str(output), REL))
    found = pieces.glob("*" + piece_files.PIECE_MARKER_SUFFIX) if pieces.exists() else []
    return {int(p.name.split(".")[0]): json.loads(p.read_text()) for p in found if not p.name.startswith(".")}


def assert_new_version_done(inputs: Path, output: Path, new_ids: list[str]) -> None:
    assert [row["id"] for row in read_jsonl(output / REL)] == new_ids  # each once, in input order
    assert output_ids(output) == new_ids
    marker = read_marker(marker_path(str(output), REL))
    assert (marker.input_size, marker.rows_in) == ((inputs / REL).stat().st_size, len(new_ids))
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []


def test_redo_in_pieces_replaces_the_old_output(tmp_path, tiny_domain_model):
    inputs, output, new_ids = classify_then_change(tmp_path, tiny_domain_model, 40, 60)
    piece_bytes = (inputs / REL).stat().st_size // 4

    redo = run_cli(
        run_args(
            inputs, output, tiny_domain_model, "--on-changed-input", "redo", "--piece-bytes", str(piece_bytes)
        )
    )

    assert redo.returncode == 0, redo.stderr[-3000:]
    assert "already assembled" not in redo.stderr
    s = summary(output)
    assert (s["files_processed"], s["documents_in"]) == (1, len(new_ids)) and s["pieces_processed"] >= 4
    assert_new_version_done(inputs, output, new_ids)
    rerun = run_cli(run_args(inputs, output, tiny_domain_model))  # unchanged now: a no-op, not exit 2
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert summary(output)["files_processed"] == 0
    assert_new_version_done(inputs, output, new_ids)


def test_a_stopped_redo_resumes_from_its_done_pieces(tmp_path, tiny_domain_model):
    inputs, output, new_ids = classify_then_change(tmp_path, tiny_domain_model, 40, 240)
    assert (output / REL).exists()
    pieces = 12
    args = run_args(
        inputs,
        output,
        tiny_domain_model,
        "--on-changed-input",
        "redo",
        "--piece-bytes",
        str((inputs / REL).stat().st_size // pieces),
        "--stop-grace",
        "0",
    )
    proc = start_cli(args, tmp_path / "stopped.log")
    wait_for(lambda: len(done_piece_markers(output)) >= 3, timeout=300, what="3 pieces of the redo done")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 3, (tmp_path / "stopped.log").read_text()[-3000:]
    done_before = done_piece_markers(output)
    total = len(json.loads(Path(piece_files.layout_path(str(output), REL)).read_text())["pieces"])
    assert 3 <= len(done_before) < total, "the redo finished before SIGTERM: the test proved nothing"
    # The old version is no longer done (its marker is gone: any resume redoes the file), and its output
    # went before the marker: no reader takes the old version's documents for the new one's.
    assert markers(output) == set() and not (output / REL).exists()

    resumed = run_cli(args)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert summary(output)["pieces_processed"] == total - len(done_before)
    assert_new_version_done(inputs, output, new_ids)
    kept = {p["piece"]: p for p in read_marker(marker_path(str(output), REL)).extra["pieces"]}
    for index, piece in done_before.items():  # the same pieces, not classified again
        assert kept[index]["finished_at"] == piece["finished_at"], index
