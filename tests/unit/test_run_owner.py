"""A task of an earlier (killed) run must not write into an output directory that a newer run with other
settings owns, and a marker such a task left does not make its file done (driver/run_owner.py)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest
from fake_markers import marker_of

from hpc_classify.driver import fingerprint as fingerprint_module
from hpc_classify.driver.fingerprint import check_or_store_fingerprint, compute_run_fingerprint
from hpc_classify.driver.input_changes import find_changed_inputs
from hpc_classify.driver.piece_task import piece_destination
from hpc_classify.driver.plan import PlannedFile, pending_files, write_plan
from hpc_classify.driver.run_owner import RUN_FILE, RunSupersededError, stored_fingerprint
from hpc_classify.driver.status import compute_status
from hpc_classify.driver.task import FileSettings, read_input, write_classified
from hpc_classify.io.discovery import InputFile
from hpc_classify.io.markers import MarkerListing, marker_path, read_marker, write_marker


class _Label:
    """The least a classifier offers write_classified: one output column, no filter."""

    def filter_mask(self, frame: pd.DataFrame) -> np.ndarray:
        return np.ones(len(frame), dtype=bool)

    def output_counts(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        return {"c": frame["c"].value_counts().to_dict()}

    def output_columns(self) -> list[str]:
        return ["c"]

    def output_types(self) -> dict[str, object]:
        return {}


def _details(max_chars: int) -> dict:
    return compute_run_fingerprint([{"model": "/m", "max_chars": max_chars}], output_format="jsonl")


def _own(output, fingerprint: str) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / RUN_FILE).write_text(json.dumps({"fingerprint": fingerprint, "details": {}}))


def _classified(tmp_path, *, bad_row: bool = False):
    source = tmp_path / "in" / "a.jsonl"
    source.parent.mkdir()
    lines = [json.dumps({"id": i, "text": f"t{i}"}) for i in range(3)] + (["{not json"] if bad_row else [])
    source.write_text("\n".join(lines) + "\n")
    read = read_input(InputFile(str(source), "a.jsonl"), "text", "skip")
    return read, read.result.frame.assign(c="x")


def _files_under(root) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, name), root) for d, _, names in os.walk(root) for name in names
    )


@pytest.mark.parametrize("bad_row", [False, True], ids=["output", "output-and-quarantine"])
def test_a_task_of_other_settings_writes_nothing_under_a_final_name_nor_a_temp_file(tmp_path, bad_row):
    output = tmp_path / "out"
    _own(output, "newer-run")  # an --overwrite run with other settings took the directory
    read, predicted = _classified(tmp_path, bad_row=bad_row)
    settings = FileSettings(str(output), "jsonl", "skip", fingerprint="killed-run")

    with pytest.raises(RunSupersededError) as caught:
        write_classified(read, predicted, [_Label()], settings)

    assert "a.jsonl" in str(caught.value) and "newer run with other settings" in str(caught.value)
    assert caught.value.retryable is False
    assert _files_under(output) == [RUN_FILE]  # no output, quarantine, marker, nor temp file


def test_a_piece_of_other_settings_is_not_written_either(tmp_path):
    output = tmp_path / "out"
    _own(output, "newer-run")
    read, predicted = _classified(tmp_path)
    settings = FileSettings(str(output), "jsonl", "skip", fingerprint="killed-run")

    with pytest.raises(RunSupersededError):
        write_classified(read, predicted, [_Label()], settings, piece_destination(settings, "a.jsonl", 0))

    assert _files_under(output) == [RUN_FILE]


def test_the_owning_runs_task_writes_output_then_marker(tmp_path):
    output = tmp_path / "out"
    _own(output, "this-run")
    read, predicted = _classified(tmp_path, bad_row=True)
    settings = FileSettings(str(output), "jsonl", "skip", fingerprint="this-run")

    marker = write_classified(read, predicted, [_Label()], settings)

    assert (marker.rows_in, marker.rows_out, marker.rows_bad) == (3, 3, 1)
    assert read_marker(marker_path(str(output), "a.jsonl")).fingerprint == "this-run"
    assert [json.loads(line)["id"] for line in (output / "a.jsonl").read_text().splitlines()] == [0, 1, 2]
    assert _files_under(output) == sorted(
        [RUN_FILE, "_a.jsonl.quarantine", "_markers/a.jsonl.done.json", "a.jsonl"]
    )


def _planned(tmp_path, names):
    inputs = tmp_path / "in"
    inputs.mkdir(exist_ok=True)
    files = []
    for name in names:
        path = inputs / name
        path.write_text('{"text": "x"}\n')
        stat = path.stat()
        files.append(PlannedFile(str(path), name, stat.st_size, stat.st_mtime))
    return files


def _marker(planned: PlannedFile, fingerprint: str):
    return dataclasses.replace(marker_of(planned), fingerprint=fingerprint, output_path=planned.relpath)


def test_a_marker_of_other_settings_makes_its_file_pending_again(tmp_path, caplog):
    output = tmp_path / "out"
    _own(output, "this-run")
    files = _planned(tmp_path, ["a.jsonl", "b.jsonl", "c.jsonl"])
    for f, fingerprint in zip(files, ["this-run", "killed-run", "this-run"], strict=True):
        write_marker(marker_path(str(output), f.relpath), _marker(f, fingerprint))
    markers = MarkerListing(str(output))

    changes = find_changed_inputs(files, str(output), verify=False, markers=markers, fingerprint="this-run")

    assert changes == []  # not a changed input: no --on-changed-input policy applies
    assert [f.relpath for f in pending_files(files, str(output), markers)] == ["b.jsonl"]
    assert not os.path.exists(marker_path(str(output), "b.jsonl"))
    assert "1 file(s) whose marker was written under other settings" in caplog.text


def test_status_counts_a_marker_of_other_settings_as_remaining(tmp_path):
    output = tmp_path / "out"
    _own(output, "this-run")
    files = _planned(tmp_path, ["a.jsonl", "b.jsonl"])
    write_plan(str(output), [str(tmp_path / "in")], files)
    for f, fingerprint in zip(files, ["this-run", "killed-run"], strict=True):
        write_marker(marker_path(str(output), f.relpath), _marker(f, fingerprint))
        (output / f.relpath).write_text('{"text": "x"}\n')

    status = compute_status(str(output))

    assert (status["files_done"], status["files_remaining"]) == (1, 1)
    assert status["files_other_settings"] == 1
    assert status["documents_in"] == 1  # the done file's only


def _an_old_runs_output(output, tmp_path, fingerprint):
    """A file classified and marked by the old run (its output and marker in place)."""
    read, predicted = _classified(tmp_path)
    write_classified(read, predicted, [_Label()], FileSettings(str(output), "jsonl", "skip", fingerprint))


def test_a_task_of_the_old_settings_renaming_during_an_overwrites_discard_fails_the_fence(
    tmp_path, monkeypatch
):
    """An --overwrite discards the old run's outputs and markers; a task of that run still running (a joined
    cluster) must not rename an output, piece or marker into place behind the discard."""
    output = tmp_path / "out"
    output.mkdir()
    old = check_or_store_fingerprint(str(output), _details(2000), overwrite=False)
    _an_old_runs_output(output, tmp_path, old)
    second = tmp_path / "second"
    second.mkdir()
    read, predicted = _classified(second)  # the old run's task for another file, still classifying
    settings = FileSettings(str(output), "jsonl", "skip", fingerprint=old)
    attempts: list[BaseException | str] = []
    real_remove = fingerprint_module.remove_outputs_of_markers

    def discard_with_an_old_task_renaming(output_dir, fallback_format):
        for destination in (None, piece_destination(settings, "b.jsonl", 0)):  # a whole file, then a piece
            try:
                write_classified(read, predicted, [_Label()], settings, destination)
                attempts.append("written")
            except RunSupersededError as exc:
                attempts.append(exc)
        return real_remove(output_dir, fallback_format)

    monkeypatch.setattr(fingerprint_module, "remove_outputs_of_markers", discard_with_an_old_task_renaming)

    new = check_or_store_fingerprint(str(output), _details(10), overwrite=True)

    assert [type(a) for a in attempts] == [RunSupersededError, RunSupersededError]
    assert all(old in str(a) and new in str(a) for a in attempts)
    assert _files_under(output) == [RUN_FILE]  # nothing of the old run: no output, piece nor marker
    stored = json.loads((output / RUN_FILE).read_text())
    assert (stored["fingerprint"], "discarding" in stored) == (new, False)


@pytest.mark.parametrize("overwrite", [False, True], ids=["new-settings", "overwrite-again"])
def test_an_overwrite_killed_during_its_discard_is_finished_by_the_next_run(tmp_path, monkeypatch, overwrite):
    output = tmp_path / "out"
    output.mkdir()
    old = check_or_store_fingerprint(str(output), _details(2000), overwrite=False)
    _an_old_runs_output(output, tmp_path, old)
    (output / "_pieces" / "big.jsonl").mkdir(parents=True)
    (output / "_pieces" / "big.jsonl" / "layout.json").write_text("{}")

    def killed(output_dir, fallback_format):
        raise KeyboardInterrupt  # the take-over killed after its _run.json, before any of the discard

    monkeypatch.setattr(fingerprint_module, "remove_outputs_of_markers", killed)
    with pytest.raises(KeyboardInterrupt):
        check_or_store_fingerprint(str(output), _details(10), overwrite=True)
    monkeypatch.undo()
    assert stored_fingerprint(str(output)) == fingerprint_module.fingerprint_id(
        _details(10)
    )  # fenced already

    new = check_or_store_fingerprint(str(output), _details(10), overwrite=overwrite)

    assert _files_under(output) == [RUN_FILE]  # the old output, quarantine, marker and pieces: gone
    assert json.loads((output / RUN_FILE).read_text())["fingerprint"] == new
    assert "discarding" not in json.loads((output / RUN_FILE).read_text())
