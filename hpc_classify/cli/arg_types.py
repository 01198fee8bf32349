"""argparse types shared by the commands (`node`, `submit`): a bad value is a usage error (exit 2) naming it,
before anything starts or is queued."""

from __future__ import annotations

import argparse

from hpc_classify.whole_numbers import is_seconds, seconds_rule


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1 (0 would silently become the default)."""
    return _whole_number(text, minimum=1)


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number >= 0."""
    return _whole_number(text, minimum=0)


def _whole_number(text: str, *, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, not {value}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds > 0 (a negative or nan timeout fails inside the job)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not is_seconds(value, allow_zero=False):
        raise argparse.ArgumentTypeError(f"must be {seconds_rule(allow_zero=False)}, not {text!r}")
    return value
