"""`run --scheduler-address` waits for a scheduler that does not accept connections yet under --worker-wait, as
`--scheduler-file` waits for its file and NeMo's `get_client(scheduler_address=)` for its address: on Slurm the
scheduler's job and the driver's are submitted together and the driver's may start first. It used to fail after
its 120 s connect timeout, whatever --worker-wait said."""

from __future__ import annotations

import json
import logging
import signal
import socket

import pytest
from driver_support import cli_env, make_corpus, run_args, run_cli, start_cli, wait_for
from scheduler_waits import scheduler_on_warning

from hpc_classify import DomainClassifier
from hpc_classify.cluster import first_worker
from hpc_classify.config import RunConfig
from hpc_classify.driver.run import run_classification
from hpc_classify.errors import ClusterError

WAITS = logging.getLogger("hpc_classify.cluster.first_worker")
CONNECT_TIMEOUT = 5  # far below the wait the test needs: the wait, not the connect timeout, must cover it


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(tmp_path, model, address: str, worker_wait: float) -> RunConfig:
    return RunConfig(
        classifiers=[DomainClassifier(model=str(model), device="cpu")],
        inputs=[str(tmp_path / "in")],
        output=str(tmp_path / "out"),
        scheduler_address=address,
        worker_wait=worker_wait,
    )


def test_run_joins_a_scheduler_started_after_the_warning(
    tmp_path, tiny_domain_model, free_port, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(first_worker, "NOTICE_AFTER", CONNECT_TIMEOUT + 1)  # started past the connect timeout
    expected = make_corpus(tmp_path / "in", 2, 3)
    address = f"tcp://127.0.0.1:{free_port}"
    caplog.set_level(logging.INFO, logger=WAITS.name)
    with scheduler_on_warning(free_port, WAITS) as started:
        # 120 s, not 0: should the scheduler never be joined, the test fails instead of hanging.
        config = _config(tmp_path, tiny_domain_model, address, worker_wait=120)
        result = run_classification(config, connect_timeout=CONNECT_TIMEOUT)
    assert len(started) == 1 and result.exit_code == 0
    for relpath, ids in expected.items():
        written = [json.loads(line)["id"] for line in (tmp_path / "out" / relpath).read_text().splitlines()]
        assert written == ids  # every document once
    warnings = [
        r.getMessage() for r in caplog.records if r.name == WAITS.name and r.levelno >= logging.WARNING
    ]
    assert warnings == [
        f"still waiting for the scheduler {address} after {CONNECT_TIMEOUT + 1:g} s, up to 120 s "
        "(--worker-wait): check the address, and that its scheduler runs or is queued"
    ]


def test_run_past_the_worker_wait_names_the_scheduler(tmp_path, tiny_domain_model, free_port) -> None:
    make_corpus(tmp_path / "in", 1, 2)
    config = _config(tmp_path, tiny_domain_model, f"127.0.0.1:{free_port}", worker_wait=1)
    with pytest.raises(ClusterError) as raised:
        run_classification(config, connect_timeout=CONNECT_TIMEOUT)
    message, hint = str(raised.value).split("\nHINT: ")
    assert message == (
        f"the scheduler tcp://127.0.0.1:{free_port} did not accept a connection within 1 s (--worker-wait)"
    )
    assert hint == (
        "check the address, and that its scheduler runs or waits in the queue; give --worker-wait 0 to wait "
        "as long as the queue takes; nothing was classified"
    )


def _join_args(tmp_path, model, address: str, worker_wait: str) -> list[str]:
    make_corpus(tmp_path / "in", 2, 3)
    args = run_args(tmp_path / "in", tmp_path / "out", model, "--worker-wait", worker_wait)
    for local_only in ("--workers", "--threads-per-worker"):  # not for a joined cluster
        at = args.index(local_only)
        del args[at : at + 2]
    return [*args, "--scheduler-address", address]


def test_cli_past_the_worker_wait_exits_2_naming_the_scheduler(
    tmp_path, tiny_domain_model, free_port
) -> None:
    address = f"tcp://127.0.0.1:{free_port}"
    done = run_cli(_join_args(tmp_path, tiny_domain_model, address, "1"), env=cli_env(), timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines()[-1] == (
        f"hpc-classify run: error: the scheduler {address} did not accept a connection within 1 s "
        "(--worker-wait); HINT: check the address, and that its scheduler runs or waits in the queue; give "
        "--worker-wait 0 to wait as long as the queue takes; nothing was classified"
    )


def test_a_signal_ends_the_wait_for_a_scheduler_address(tmp_path, tiny_domain_model, free_port) -> None:
    address = f"tcp://127.0.0.1:{free_port}"
    log = tmp_path / "run.log"
    proc = start_cli(_join_args(tmp_path, tiny_domain_model, address, "0"), log)
    try:
        line = (
            f"waiting as long as it takes (--worker-wait 0) for the scheduler {address} to accept connections"
        )
        wait_for(lambda: line in log.read_text(), timeout=120, what="the wait's log line")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)
    finally:
        proc.kill()
    text = log.read_text()
    assert code == 5, text  # stopped before any progress (not requeued by the batch scripts)
    assert "Traceback" not in text
    summary = json.loads((tmp_path / "out" / "_summary.json").read_text())
    assert summary["exit_code"] == 5 and summary["files_remaining"] == 2 and summary["signal"] == "SIGTERM"
