"""RunContext, what a locked run's steps share: keywords only (output_dir and fingerprint are both strings),
and fixed once built (the dispatcher and the summary must see the same stats and failure log)."""

from __future__ import annotations

import dataclasses

import pytest

from hpc_classify.config import RunConfig
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.summary import RunStats
from hpc_classify.stop_request import StopRequest


def test_run_context_takes_keywords_only_and_is_fixed(tmp_path) -> None:
    config = RunConfig(inputs=(str(tmp_path),), output=str(tmp_path), classifiers=("stored only",))
    parts = (config, str(tmp_path), "f", RunStats(), FailureLog(str(tmp_path)), StopRequest(()))
    with pytest.raises(TypeError, match="positional argument"):
        RunContext(*parts)
    context = RunContext(**dict(zip([f.name for f in dataclasses.fields(RunContext)], parts, strict=True)))
    assert (context.output_dir, context.fingerprint) == (str(tmp_path), "f")
    with pytest.raises(dataclasses.FrozenInstanceError):
        context.stats = RunStats()  # type: ignore[misc]
