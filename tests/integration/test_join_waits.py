"""`run --scheduler-file` joins a cluster whose scheduler and workers may still wait in Slurm's queue: the
scheduler file and the first worker are waited for under --worker-wait (0: as long as it takes), not a fixed
connect timeout, and a signal ends the wait with a clean summary. It used to wait for a missing scheduler
file in a call no signal ended (SIGINT, SIGTERM: only SIGKILL), and to fail after 120 s when the scheduler's
workers were still queued."""

from __future__ import annotations

import json
import logging
import signal
import threading

from distributed import Client, LocalCluster
from driver_support import make_corpus, run_args, start_cli, wait_for
from scheduler_waits import handler_on

from hpc_classify import DomainClassifier
from hpc_classify.config import RunConfig
from hpc_classify.driver.run import run_classification


def test_a_signal_ends_the_wait_for_a_scheduler_file_not_yet_written(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_corpus(inputs, 2, 3)
    missing = tmp_path / "scheduler.json"
    log = tmp_path / "run.log"
    args = run_args(inputs, output, tiny_domain_model, "--worker-wait", "0")
    args = [
        a for a in args if a not in ("--workers", "1", "--threads-per-worker")
    ]  # not for a joined cluster
    proc = start_cli([*args, "--scheduler-file", str(missing)], log)
    try:
        wait_for(
            lambda: "waiting as long as it takes" in log.read_text(), timeout=120, what="the wait's log line"
        )
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    text = log.read_text()
    assert code == 5, text  # stopped before any progress (not requeued by the batch scripts)
    assert "Traceback" not in text
    summary = json.loads((output / "_summary.json").read_text())
    assert summary["exit_code"] == 5 and summary["files_remaining"] == 2 and summary["signal"] == "SIGTERM"


CONNECT_TIMEOUT = 5  # room for the client's connection on a loaded machine


class _ScaleOnceWaiting(logging.Handler):
    """Adds a worker to `cluster` a few seconds after the driver says it waits for the first one (past the
    connect timeout the test gives)."""

    def __init__(self, cluster) -> None:
        super().__init__()
        self.cluster = cluster
        self.waiting = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "for the first worker" in record.getMessage() and not self.waiting.is_set():
            self.waiting.set()
            threading.Timer(CONNECT_TIMEOUT + 2, self.cluster.scale, args=(1,)).start()


def test_workers_that_join_after_the_connect_timeout_classify_the_run(tmp_path, tiny_domain_model, caplog):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, 2, 3)
    scheduler_file = tmp_path / "scheduler.json"
    waits = logging.getLogger("hpc_classify.cluster.first_worker")
    caplog.set_level(logging.INFO, logger=waits.name)  # the line the handler waits for is INFO
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        with Client(cluster) as owner:
            owner.write_scheduler_file(str(scheduler_file))
        config = RunConfig(
            classifiers=[DomainClassifier(model=str(tiny_domain_model), device="cpu")],
            inputs=[str(inputs)],
            output=str(output),
            scheduler_file=str(scheduler_file),
            worker_wait=120,  # not 0: should the worker never join, the test fails instead of hanging
        )
        with handler_on(waits, _ScaleOnceWaiting(cluster)) as joins:
            result = run_classification(config, connect_timeout=CONNECT_TIMEOUT)
    assert joins.waiting.is_set() and result.exit_code == 0
    for relpath, ids in expected.items():
        written = [json.loads(line)["id"] for line in (output / relpath).read_text().splitlines()]
        assert written == ids
