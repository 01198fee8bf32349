"""Counts of output values for markers, `status` and summaries (the classifiers' `output_counts`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TENTHS = tuple(f"{tenth / 10:.1f}" for tenth in range(11))  # histogram bins of a score in [0, 1]


def count_values(values: Iterable[Any], known: Iterable[str] = ()) -> dict[str, int]:
    """value (as a string) -> rows, for markers, `status` and summaries: every `known` value listed
    first, in its order, zero when unused; any other value after them."""
    counts = dict.fromkeys(known, 0)
    for value in values:
        key = str(value)
        counts[key] = counts.get(key, 0) + 1
    return counts
