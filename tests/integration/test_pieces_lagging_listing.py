"""A file in pieces whose newest marker the driver's listing misses (an NFS client's cached directory right
after a worker on another node wrote it) is still assembled, and a piece whose task failed after writing that
marker is not classified again: every document once, exit 0. A file left neither done nor failed for any
other reason ends the run with exit 3 and says so in the summary, never exit 0 "all files done"; the rerun
finishes it.

The cluster runs in this process (threads), so a patched listing is the driver's and the workers' alike."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from driver_support import read_jsonl

from hpc_classify import DomainClassifier, run
from hpc_classify.driver import piece_files, piece_task, worker_tasks
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


def classify(model: Path, inputs: Path, output: Path, client, piece_bytes: int, max_retries: int = 0):
    classifier = DomainClassifier(model=str(model), autocast=False, device="cpu")
    return run(classifier, inputs, output, cluster=client, piece_bytes=piece_bytes, max_retries=max_retries)


class _Listing:
    """What os.scandir returns (a context manager and an iterator), over the entries given."""

    def __init__(self, entries: list) -> None:
        self._entries = iter(entries)

    def __enter__(self) -> _Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self) -> _Listing:
        return self

    def __next__(self):
        return next(self._entries)

    def close(self) -> None:
        pass


def hide_from_listings(monkeypatch, marker: str) -> None:
    """os.scandir of `marker`'s directory leaves it out, as an NFS client's cached listing does after a worker
    on another node wrote it; a lookup by its name finds it."""
    real_scandir = os.scandir

    def lagging_scandir(path=".", *args):
        entries = list(real_scandir(path, *args))
        if isinstance(path, str) and os.path.abspath(path) == os.path.dirname(marker):
            entries = [e for e in entries if e.path != marker]
        return _Listing(entries)

    monkeypatch.setattr(os, "scandir", lagging_scandir)


def test_a_listing_that_misses_the_newest_marker_still_assembles_the_file(
    tmp_path, tiny_domain_model, local_client, monkeypatch
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    ids, piece_bytes = big_file(inputs)
    hide_from_listings(monkeypatch, piece_files.piece_marker_path(str(output), "big.jsonl", PIECES - 1))

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


@pytest.mark.parametrize("max_retries", [0, 1])
def test_a_piece_whose_worker_died_after_its_marker_is_not_redone_though_a_listing_lags(
    tmp_path, tiny_domain_model, local_client, monkeypatch, max_retries
):
    """A piece's task fails after its marker was written (its worker died on another node), and the driver's
    listing of the pieces directory does not show that marker yet: the piece is done all the same, neither
    classified again (max_retries 1) nor its file failed (max_retries 0)."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    ids, piece_bytes = big_file(inputs)
    dying = 3
    hide_from_listings(monkeypatch, piece_files.piece_marker_path(str(output), "big.jsonl", dying))
    classified: list[int] = []
    real_classify_pieces = piece_task.classify_pieces

    def counting(work, *args, **kwargs):
        for marker in real_classify_pieces(work, *args, **kwargs):
            classified.append(marker.extra["piece"])
            yield marker

    died: list[int] = []
    real_job = worker_tasks._run_piece_job

    def dies_after_its_marker(job, *args) -> None:
        real_job(job, *args)
        if job.work is not None and job.work.piece is not None and job.work.piece.index == dying and not died:
            died.append(dying)
            raise RuntimeError("worker died after writing its piece marker")

    monkeypatch.setattr(piece_task, "classify_pieces", counting)
    monkeypatch.setattr(worker_tasks, "_run_piece_job", dies_after_its_marker)  # the task fails

    result = classify(tiny_domain_model, inputs, output, local_client, piece_bytes, max_retries=max_retries)

    summary = result.summary
    assert died == [dying] and sorted(classified) == list(range(PIECES))  # each piece classified once
    assert (result.exit_code, summary["exit_meaning"]) == (0, "all files done")
    assert (summary["files_processed"], summary["files_failed"], summary["retries"]) == (1, 0, 0)
    assert (summary["pieces_processed"], summary["documents_out"]) == (PIECES, DOCUMENTS)
    assert [row["id"] for row in read_jsonl(output / "big.jsonl")] == ids  # each once, in input order
