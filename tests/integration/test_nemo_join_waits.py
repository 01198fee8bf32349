"""NeMo's `get_client` joining a cluster whose scheduler file or workers are not there yet (workers submitted
as Slurm jobs of their own wait in the queue): it waits under `worker_wait` as `run --scheduler-file` does, and
says what it waits for. It used to fail when no worker had joined 30 s after connecting, and to wait for a
missing (or mistyped) scheduler file for ever without a word, inside distributed."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest
from distributed import Client, LocalCluster
from scheduler_waits import handler_on, within

from hpc_classify import DocumentDataset, DomainClassifier, get_client
from hpc_classify.cluster import first_worker, nemo_client
from hpc_classify.errors import ClusterError, ConfigError

WAITS = logging.getLogger("hpc_classify.cluster.first_worker")
RETURN_WITHIN = 60.0  # seconds; get_client hanging (the old wait for a scheduler file) fails the test instead


@pytest.fixture(autouse=True)
def short_waits(monkeypatch):
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(first_worker, "NOTICE_AFTER", 1.5, raising=False)  # absent where it never warned
    monkeypatch.setattr(nemo_client, "CONNECT_TIMEOUT_S", 1)  # the old fixed wait for a worker, shortened


@pytest.fixture
def no_workers():
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        yield cluster


class _OnLog(logging.Handler):
    """Runs `action` once, on the first record of WAITS whose message contains `text`: what the test does once
    get_client says it waits (a readiness signal, not a sleep)."""

    def __init__(self, text: str, action: Callable[[], Any]) -> None:
        super().__init__()
        self.text, self.action = text, action
        self.seen: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if self.text in record.getMessage() and not self.seen:
            self.seen.append(record)
            self.action()


def _get_client_within(seconds: float, on_log: _OnLog, **kwargs: Any) -> Any:
    """get_client(**kwargs), with `on_log` on the waits' logger, in a daemon thread: its client, or its exception;
    an AssertionError when it has not returned within `seconds` (the thread is left behind, as a hung call
    would be)."""
    with handler_on(WAITS, on_log):
        return within(seconds, lambda: get_client(**kwargs))


def test_a_worker_joining_after_the_connect_timeout_classifies(
    tmp_path, no_workers, tiny_domain_model, caplog
):
    caplog.set_level(logging.INFO, logger=WAITS.name)
    path = tmp_path / "scheduler.json"
    with Client(no_workers) as owner:
        owner.write_scheduler_file(str(path))
    # The worker joins once get_client has warned that it still waits (1.5 s: past the 1 s connect timeout).
    joins = _OnLog("still waiting for the first worker", lambda: no_workers.scale(1))
    client = _get_client_within(RETURN_WITHIN, joins, scheduler_file=str(path), worker_wait=120)
    try:
        assert len(client.nthreads()) == 1
        frame = pd.DataFrame(
            {"id": [f"d{i}" for i in range(7)], "text": [f"game number {i}" for i in range(7)]}
        )
        dataset = DocumentDataset.from_pandas(frame, npartitions=2)
        result = DomainClassifier(model=str(tiny_domain_model))(dataset).df.compute()
    finally:
        client.close()
    assert sorted(result["id"]) == [f"d{i}" for i in range(7)]  # every row once
    assert result["domain_pred"].notna().all()
    message = joins.seen[0].getMessage()
    assert joins.seen[0].levelno == logging.WARNING
    assert f"the first worker of scheduler file {path} after 1.5 s, up to 120 s (worker_wait)" in message


def test_a_scheduler_file_written_later_is_joined(tmp_path, no_workers):
    no_workers.scale(1)
    path = tmp_path / "scheduler.json"

    def write() -> None:
        with Client(no_workers) as owner:
            owner.write_scheduler_file(str(path))

    writes = _OnLog("still waiting for the scheduler file", write)
    try:
        client = _get_client_within(RETURN_WITHIN, writes, scheduler_file=str(path))
    finally:
        if not path.exists():  # the old code waits for it in a thread that must end
            write()
    try:
        assert client.scheduler.address == json.loads(path.read_text())["address"]
        assert len(client.nthreads()) == 1
    finally:
        client.close()
    assert writes.seen[0].levelno == logging.WARNING
    assert f"the scheduler file {path} after 1.5 s, up to 300 s (worker_wait)" in writes.seen[0].getMessage()


def test_a_missing_scheduler_file_is_an_error_naming_it_after_worker_wait(tmp_path):
    missing = tmp_path / "typo.json"
    never = _OnLog("no such message", lambda: None)
    with pytest.raises(ClusterError) as raised:
        _get_client_within(RETURN_WITHIN, never, scheduler_file=str(missing), worker_wait=0.5)
    assert (
        str(raised.value).split("\nHINT: ")[0]
        == f"the scheduler file {missing} was not written within 0.5 s (worker_wait)"
    )
    assert "check the path" in raised.value.hint and "give worker_wait=0 to wait" in raised.value.hint


def test_no_worker_within_worker_wait_is_an_error_naming_it(tmp_path, no_workers):
    with Client(no_workers) as owner:
        owner.write_scheduler_file(str(tmp_path / "scheduler.json"))
    with pytest.raises(ClusterError) as raised:
        get_client(scheduler_file=str(tmp_path / "scheduler.json"), worker_wait=0.5)
    assert (
        str(raised.value).split("\nHINT: ")[0]
        == f"no worker joined scheduler file {tmp_path / 'scheduler.json'} within 0.5 s (worker_wait)"
    )
    assert "give worker_wait=0" in raised.value.hint


def test_worker_wait_is_checked_and_named_where_it_does_not_apply(caplog):
    for bad in (-1, "60", True):
        with pytest.raises(
            ConfigError, match=f"worker_wait must be a finite number of seconds >= 0.*not {bad!r}"
        ):
            get_client(scheduler_address="tcp://127.0.0.1:1", worker_wait=bad)
    client = get_client(n_workers=1, worker_wait=5)
    client.shutdown()
    assert "worker_wait=5 do(es) not apply to a local cluster (death_timeout= sets" in caplog.text
