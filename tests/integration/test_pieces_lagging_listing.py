"""A file in pieces whose last marker the driver's listing misses once (an NFS client's cached directory
right after a worker on another node wrote it) is still assembled: every document once, exit 0. A file
left neither done nor failed for any other reason ends the run with exit 3 and says so in the summary,
never exit 0 "all files done"; the rerun finishes it.

The cluster runs in this process (threads), so a patched listing is the driver's and the workers' alike."""

from __future__ import annotations

import json
from pathlib import Path

from driver_support import read_jsonl

from hpc_classify import DomainClassifier, run
from hpc_classify.driver import piece_files
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

DOCUMENTS, PIECES = 150, 8


def big_file(inputs: Path) -> tuple[list[str], int]:
    """One JSONL file of DOCUMENTS documents; its ids, and a piece size that cuts it into PIECES pieces."""
    texts, _ = synthetic_corpus(DOCUMENTS, DOMAIN_LABELS, seed=7)
    ids = [f"big-{i}" for i in range(DOCUMENTS)]
    inputs.mkdir()
    data = "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True))
    (inputs / "big.jsonl").write_text(data, encoding="utf-8")
    return ids, len(data.encode()) // PIECES + 1


def classify(model: Path, inputs: Path, output: Path, client, piece_bytes: int):
    classifier = DomainClassifier(model=str(model), autocast=False, device="cpu")
    return run(classifier, inputs, output, cluster=client, piece_bytes=piece_bytes, max_retries=0)


def test_a_listing_that_misses_the_newest_marker_once_still_assembles_the_file(
    tmp_path, tiny_domain_model, local_client, monkeypatch
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    ids, piece_bytes = big_file(inputs)
    listed = piece_files.done_piece_indices
    missed = []

    def lagging_once(output_dir: str, relpath: str) -> set[int]:
        done = listed(output_dir, relpath)
        if not missed and len(done) == PIECES:  # the newest marker is not visible yet, once
            missed.append(max(done))
            return done - {max(done)}
        return done

    monkeypatch.setattr(piece_files, "done_piece_indices", lagging_once)

    result = classify(tiny_domain_model, inputs, output, local_client, piece_bytes)

    summary = result.summary
    assert (result.exit_code, summary["exit_meaning"]) == (0, "all files done")
    assert (summary["files_processed"], summary["files_remaining"]) == (1, 0)
    assert (summary["pieces_processed"], summary["documents_out"]) == (PIECES, DOCUMENTS)
    assert [row["id"] for row in read_jsonl(output / "big.jsonl")] == ids  # each once, in input order
    assert not (output / "_pieces").exists()


def test_a_file_left_unassembled_ends_the_run_with_exit_3_and_the_rerun_finishes_it(
    tmp_path, tiny_domain_model, local_client, monkeypatch
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    ids, piece_bytes = big_file(inputs)
    monkeypatch.setattr(PieceScheduler, "after", lambda self, job: None)  # the assembly never queued

    first = classify(tiny_domain_model, inputs, output, local_client, piece_bytes)

    summary = json.loads((output / "_summary.json").read_text())
    assert first.exit_code == summary["exit_code"] == 3
    assert summary["exit_meaning"] != "all files done" and summary["interrupted"] is False
    assert (summary["files_processed"], summary["files_remaining"], summary["files_failed"]) == (0, 1, 0)
    assert summary["pieces_processed"] == PIECES
    assert summary["stop_reason"] == (
        "1 file(s) left neither done nor failed, though nothing stopped the run: big.jsonl; rerun to finish them"
    )
    assert not (output / "big.jsonl").exists()
    assert len(piece_files.done_piece_indices(str(output), "big.jsonl")) == PIECES

    monkeypatch.undo()
    second = classify(tiny_domain_model, inputs, output, local_client, piece_bytes)

    assert second.exit_code == 0 and second.summary["pieces_processed"] == 0  # only the assembly
    assert [row["id"] for row in read_jsonl(output / "big.jsonl")] == ids
