"""The words a close step logs when it fails (cluster/connect.py). distributed raises a TimeoutError with no
message from some of its nested timeouts: the log said "error while closing LocalCluster: TimeoutError" or
"timed out after 2 s" depending on which deadline fired first (on a busy machine, the bare one)."""

from __future__ import annotations

import logging

import pytest

from hpc_classify.cluster import connect


class Closing:
    """Something the driver closes, whose close raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def close(self, timeout: float) -> None:
        raise self.error


@pytest.mark.parametrize(
    "error", [TimeoutError(), TimeoutError("timed out after 2 s"), TimeoutError("other")]
)
def test_a_timed_out_close_says_so_with_its_deadline_whichever_timeout_fired(caplog, error) -> None:
    thing = Closing(error)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.connect"):
        connect.close_quietly(thing, None, timeout=2.0)
    assert [r.getMessage() for r in caplog.records] == ["error while closing Closing: timed out after 2 s"]


def test_another_close_error_keeps_its_words(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.connect"):
        connect.close_quietly(Closing(OSError("connection reset")), None, timeout=2.0)
        connect.close_quietly(Closing(RuntimeError()), None, timeout=2.0)
    assert [r.getMessage() for r in caplog.records] == [
        "error while closing Closing: connection reset",
        "error while closing Closing: RuntimeError",
    ]


def test_an_os_timeout_keeps_its_own_words(caplog) -> None:
    import errno

    error = OSError(errno.ETIMEDOUT, "Connection timed out")  # Python makes it a TimeoutError with an errno
    assert isinstance(error, TimeoutError)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.connect"):
        connect.close_quietly(Closing(error), None, timeout=2.0)
    assert [r.getMessage() for r in caplog.records] == [
        "error while closing Closing: [Errno 110] Connection timed out"
    ]
