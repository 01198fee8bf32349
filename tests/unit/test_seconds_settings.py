"""Every setting in seconds is checked by one rule (whole_numbers.is_seconds): the run's configuration, the
Slurm launcher's options (Python and command line) and NeMo's get_client accept and refuse the same values."""

from __future__ import annotations

import argparse
import math
from fractions import Fraction

import numpy as np
import pytest

from hpc_classify.cli.arg_types import positive_seconds
from hpc_classify.cluster import nemo_client
from hpc_classify.cluster.slurm_node import NodeOptions
from hpc_classify.config import RunConfig
from hpc_classify.errors import ConfigError

# (value, accepted where 0 means "no limit", accepted where a wait must be > 0)
VALUES = [
    (30, True, True),
    (2.5, True, True),
    (np.float32(30.0), True, True),  # a computed wait
    (np.int64(30), True, True),
    (Fraction(1, 2), True, True),
    (0, True, False),
    (0.0, True, False),
    (-1, False, False),
    (math.inf, False, False),  # 0 says "no limit"; JSON has no infinity
    (-math.inf, False, False),
    (math.nan, False, False),
    (True, False, False),  # an int to Python, never meant as seconds
    ("30", False, False),
    ([30], False, False),
]


def _accepts(check) -> bool:
    try:
        check()
    except (ConfigError, argparse.ArgumentTypeError):
        return False
    return True


def _run_config(value):
    return RunConfig(inputs=("in",), output="out", classifiers=("a classifier",), worker_wait=value)


def _get_client(value, monkeypatch):
    monkeypatch.setattr(nemo_client, "_join", lambda *args: "joined")  # the check only, no scheduler
    return nemo_client.get_client(scheduler_address="tcp://127.0.0.1:1", worker_wait=value)


@pytest.mark.parametrize(("value", "zero_allowed", "positive"), VALUES, ids=repr)
def test_every_seconds_setting_accepts_and_refuses_the_same_values(
    value, zero_allowed, positive, monkeypatch
):
    waits = {
        "RunConfig(worker_wait=)": _accepts(lambda: _run_config(value)),
        "RunConfig(stop_grace=)": _accepts(
            lambda: RunConfig(inputs=("in",), output="out", classifiers=("c",), stop_grace=value)
        ),
        "get_client(worker_wait=)": _accepts(lambda: _get_client(value, monkeypatch)),
    }
    timeouts = {
        "NodeOptions(worker_timeout=)": _accepts(lambda: NodeOptions(job_root="j", worker_timeout=value)),
        "RunConfig(progress_interval=)": _accepts(
            lambda: RunConfig(inputs=("in",), output="out", classifiers=("c",), progress_interval=value)
        ),
    }
    if not isinstance(value, str | list | Fraction):  # the command line's text of the same number
        timeouts["--death-timeout"] = _accepts(lambda: positive_seconds(str(value)))
    assert waits == dict.fromkeys(waits, zero_allowed)
    assert timeouts == dict.fromkeys(timeouts, positive)


def test_a_computed_wait_is_stored_as_a_plain_float():
    config = _run_config(np.float32(30.0))
    assert type(config.worker_wait) is float and config.worker_wait == 30.0
    assert type(_run_config(30).worker_wait) is int  # as given: the stored configuration does not change


def test_the_messages_say_the_same_rule():
    with pytest.raises(ConfigError) as raised:
        _run_config(math.inf)
    assert str(raised.value) == "worker_wait must be a finite number of seconds >= 0 (0: no limit), not inf"
    with pytest.raises(ConfigError) as raised:
        nemo_client.get_client(scheduler_address="tcp://127.0.0.1:1", worker_wait=math.inf)
    assert str(raised.value) == "worker_wait must be a finite number of seconds >= 0 (0: no limit), not inf"
    with pytest.raises(ConfigError) as raised:
        NodeOptions(job_root="j", death_timeout=0)
    assert str(raised.value) == "death_timeout must be a finite number of seconds > 0, not 0"
    with pytest.raises(argparse.ArgumentTypeError) as raised:
        positive_seconds("0")
    assert str(raised.value) == "must be a finite number of seconds > 0, not '0'"
