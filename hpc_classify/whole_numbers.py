"""One test for "a whole number >= N" in the arguments we check: numpy's integers count (a partition or
worker count is often computed), bools do not (True is an int to Python, never meant as a count)."""

from __future__ import annotations

import numbers
from typing import Any


def is_integer(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def is_whole_number(value: Any, minimum: int) -> bool:
    return is_integer(value) and value >= minimum
