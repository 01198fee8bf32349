"""How a message names a long list: the first few items, then how many more."""

from __future__ import annotations

from collections.abc import Sequence

NAMED = 5


def first_and_count(items: Sequence[str], shown: int = NAMED) -> str:
    """`a, b, c, d, e and 7 more`: a message about thousands of files stays one line."""
    rest = len(items) - shown
    return ", ".join(items[:shown]) + (f" and {rest} more" if rest > 0 else "")
