"""The logging that the CLI's main() configures for its process (Dask's INFO chatter turned down to WARNING) does not
outlive the test that called main() in-process (tests/conftest.py puts it back): a later test's caplog would miss
distributed's INFO records after it and see them alone. The second test reads what the first left: they run in this
order (and the second passes alone)."""

from __future__ import annotations

import logging
from pathlib import Path

import distributed  # noqa: F401  its own logger levels (distributed: INFO) are in place before the first test
import pytest

from hpc_classify.cli.main import main
from hpc_classify.logging_setup import QUIETED_LOGGERS

UNSET = {name: logging.NOTSET for name in QUIETED_LOGGERS} | {
    "distributed": logging.INFO
}  # distributed's own


def _levels() -> dict[str, int]:
    return {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}


def test_a_cli_run_quiets_the_libraries_for_its_whole_process(tmp_path: Path) -> None:
    assert _levels() == UNSET
    main(["status", "--output", str(tmp_path)])
    assert _levels() == dict.fromkeys(QUIETED_LOGGERS, logging.WARNING)


def test_the_next_test_sees_distributeds_info_records_again(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    logging.getLogger("distributed.scheduler").info("a worker joined")
    assert _levels() == UNSET
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ("distributed.scheduler", "INFO", "a worker joined")
    ]
