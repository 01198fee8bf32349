"""NodeOptions takes numpy's numbers (a timeout or count computed with numpy) and keeps them as Python's int and
float: kept as given, an np.float64 wrote `np.float64(2.5)` wherever its repr went (a worker's command line, an
error message) and an np.int64 made json.dumps fail. Bools stay refused where a number is meant."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from hpc_classify.cluster.slurm_node import NodeOptions
from hpc_classify.errors import ConfigError


def test_numpy_numbers_become_python_numbers() -> None:
    options = NodeOptions(
        job_root="j",
        worker_timeout=np.float64(120.5),
        death_timeout=np.int64(30),
        heartbeat_interval=np.float32(2.5),
        workers_per_node=np.int64(4),
        threads_per_worker=np.int32(2),
    )
    numbers = {
        name: getattr(options, name)
        for name in (
            "worker_timeout",
            "death_timeout",
            "heartbeat_interval",
            "workers_per_node",
            "threads_per_worker",
        )
    }
    assert {name: type(value) for name, value in numbers.items()} == {
        "worker_timeout": float,
        "death_timeout": int,
        "heartbeat_interval": float,
        "workers_per_node": int,
        "threads_per_worker": int,
    }
    assert json.dumps(numbers) == (
        '{"worker_timeout": 120.5, "death_timeout": 30, "heartbeat_interval": 2.5, '
        '"workers_per_node": 4, "threads_per_worker": 2}'
    )
    assert repr(options.worker_timeout) == "120.5"


def test_python_numbers_are_kept_as_given() -> None:
    options = NodeOptions(job_root="j", worker_timeout=300, death_timeout=2.5, workers_per_node=None)
    assert (options.worker_timeout, type(options.worker_timeout)) == (300, int)
    assert options.death_timeout == 2.5 and options.workers_per_node is None


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"worker_timeout": True}, "worker_timeout must be a finite number of seconds > 0, not True"),
        (
            {"threads_per_worker": np.bool_(True)},
            "threads_per_worker must be a whole number >= 1, not np.True_",
        ),
        ({"workers_per_node": True}, "workers_per_node must be a whole number >= 1, not True"),
    ],
)
def test_bools_are_refused_where_a_number_is_meant(options: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=f"^{re.escape(says)}$"):
        NodeOptions(job_root="j", **options)
