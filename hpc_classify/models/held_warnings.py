"""Warnings a library logs while loading a model, held until the load is judged: let out when it loaded as it
should; dropped when our own error (naming the file and keys) replaces them, so that a refusal is not preceded by
transformers' misleading "newly initialized" report."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

TRANSFORMERS_LOAD_LOGGER = "transformers.modeling_utils"  # where from_pretrained reports missing weights


@contextmanager
def held_warnings(name: str) -> Iterator[Any]:
    """Hold the warnings logged to logger `name` in the block; the block calls the function it gets to let them
    out (loaded as it should be). Left unreleased (our error replaces them), they are dropped."""
    held: list[logging.LogRecord] = []
    target = logging.getLogger(name)

    def hold(record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING:
            return True
        held.append(record)
        return False

    def release() -> None:
        target.removeFilter(hold)
        for record in held:
            target.handle(record)
        held.clear()

    target.addFilter(hold)
    try:
        yield release
    finally:
        target.removeFilter(hold)
