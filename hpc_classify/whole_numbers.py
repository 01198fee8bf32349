"""The number checks of the arguments we take, each decided once.

A whole number >= N: numpy's integers count (a partition or worker count is often computed), bools do not
(True is an int to Python, never meant as a count). A number of seconds: any real number, numpy's included (a
computed timeout), finite (where a wait may be unbounded, 0 says so; nan compares false with everything, and
JSON, in which a run's configuration is stored, has no infinity), never a bool."""

from __future__ import annotations

import math
import numbers
from typing import Any


def is_integer(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def is_whole_number(value: Any, minimum: int) -> bool:
    return is_integer(value) and value >= minimum


def is_seconds(value: Any, *, allow_zero: bool) -> bool:
    """A finite number of seconds > 0, or >= 0 where `allow_zero` (a wait whose 0 means no limit)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        return False
    return value >= 0 if allow_zero else value > 0


def seconds_rule(*, allow_zero: bool) -> str:
    """What `is_seconds` accepts, for an error message: "a finite number of seconds > 0" (or ">= 0")."""
    return f"a finite number of seconds {'>= 0' if allow_zero else '> 0'}"


def plain_number(value: Any) -> int | float:
    """An accepted number as Python's int or float: numpy's (np.int64, np.float64) repr as `np.float64(2.5)` and
    np.int64 is no JSON number."""
    return int(value) if is_integer(value) else float(value)
