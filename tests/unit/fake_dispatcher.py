"""A Dispatcher over a RunContext built by hand (unit tests of the driver's dispatching without a run): the one
place those tests build them, so that a change to either signature is made here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.summary import RunStats
from hpc_classify.stop_request import StopRequest


def run_context(output_dir: Path, *, stop: StopRequest | None = None, **settings: Any) -> RunContext:
    """The context of a run into `output_dir` with RunConfig `settings`, fingerprint "f"; no signal handlers."""
    config = RunConfig(
        inputs=(str(output_dir),), output=str(output_dir), classifiers=("stored only",), **settings
    )
    return RunContext(
        config=config,
        output_dir=str(output_dir),
        fingerprint="f",
        stats=RunStats(),
        failures=FailureLog(str(output_dir)),
        stop=StopRequest(()) if stop is None else stop,
    )


def make_dispatcher(
    client: Any, output_dir: Path, *, stop: StopRequest | None = None, piece_bytes: int = 0, **settings: Any
) -> Dispatcher:
    """A Dispatcher on `client` (a distributed.Client or a fake of the parts it uses) for `run_context`'s run."""
    return Dispatcher(
        client,
        run_context(output_dir, stop=stop, **settings),
        progress=Progress(0, interval=60),
        piece_bytes=piece_bytes,
    )
