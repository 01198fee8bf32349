"""A stop signal while the run lists its inputs and reads its markers (minutes on a large corpus) ends the
run cleanly: a summary saying which signal, nothing submitted, the lock released. Before, the driver caught
signals only once classifying began, and such a signal killed the process."""

from __future__ import annotations

import json
import os
import signal

from hpc_classify import exit_codes, run
from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.driver import run as driver_run


class _UnusableClient:  # passes run()'s checks; any use would mean work was submitted
    submit = nthreads = None

    def __getattr__(self, name):
        raise AssertionError(f"the client was used ({name}) although the stop came first")


def test_a_signal_while_listing_inputs_stops_before_any_work(tmp_path, tiny_domain_model, monkeypatch):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        (inputs / f"{name}.jsonl").write_text(json.dumps({"text": f"document {name}"}) + "\n")
    leaked = []
    previous = signal.signal(signal.SIGUSR1, lambda *_: leaked.append("SIGUSR1"))  # outside the driver's
    real_list = driver_run.list_input_files

    def list_then_signal(*args, **kwargs):
        files = real_list(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGUSR1)  # as the batch script's warning signal would
        return files

    monkeypatch.setattr(driver_run, "list_input_files", list_then_signal)
    try:
        result = run(
            DomainClassifier(model=str(tiny_domain_model), device="cpu"),
            str(inputs),
            str(tmp_path / "out"),
            client=_UnusableClient(),
        )
    finally:
        assert signal.signal(signal.SIGUSR1, previous) is not None
    assert leaked == []  # the driver's handler had it
    assert result.exit_code == exit_codes.STOPPED_BEFORE_PROGRESS  # not 3: a batch script must not requeue
    summary = result.summary
    assert summary["interrupted"] and summary["signal"] == "SIGUSR1"
    assert (summary["files_processed"], summary["files_remaining"]) == (0, 2)
    assert not (tmp_path / "out" / "_lock").exists()
    assert not list((tmp_path / "out").glob("*.jsonl"))


def test_a_run_whose_lock_is_taken_over_stops_and_leaves_the_summary_to_the_other(
    tmp_path, tiny_domain_model, monkeypatch
):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "a.jsonl").write_text(json.dumps({"text": "document a"}) + "\n")

    class TakenOverAtOnce(driver_run.RunLock):  # the heartbeat's finding, without waiting for a beat
        def acquire(self) -> None:
            super().acquire()
            self.on_lost()

    monkeypatch.setattr(driver_run, "RunLock", TakenOverAtOnce)
    result = run(
        DomainClassifier(model=str(tiny_domain_model), device="cpu"),
        str(inputs),
        str(tmp_path / "out"),
        client=_UnusableClient(),
    )
    assert result.exit_code == exit_codes.STOPPED_BEFORE_PROGRESS and result.summary_path is None
    assert result.summary["signal"] == "LOCK_LOST"
    assert not (tmp_path / "out" / "_summary.json").exists()
