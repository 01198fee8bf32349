"""How often a node looks at the job directory's files on the shared file system while the job starts.

Every look is a lookup per file, mostly of a name that does not exist yet: on Lustre each goes to the metadata
server, and 100 nodes that look five times a second make thousands a second for as long as the workers take to
start (a minute or more on a cold file system). So the looks back off: the first gap is the node's
`poll_interval`, each next one twice the last, up to `LONGEST_GAP`; a change (workers joined) starts over. A
file that appears is seen within `LONGEST_GAP` seconds. The one wait without it: rank 0's for its own
scheduler's file, which every node waits for.

Once its workers started, every other node watches rank 0 (its heartbeat, its `shutdown` file) for the rest of
the job, days: the same backoff, up to `rank0_watch_gap` (other_rank.py).
"""

from __future__ import annotations

import math
import time

LONGEST_GAP = 5.0  # seconds: the bound on seeing a node's refusal, its worker's exit or rank 0's files


def rank0_watch_gap(death_timeout: float) -> float:
    """The longest gap between another node's looks at rank 0's heartbeat and `shutdown` while it serves: 5 s
    (LONGEST_GAP, also rank 0's heartbeat interval: looking more often mostly rereads the same beat), or a tenth
    of --death-timeout where that is less. Rank 0's loss is declared at the first look after death_timeout s of
    silence, so at most a tenth late; rank 0's end (its ended beat, `shutdown`) is seen within the gap."""
    return min(LONGEST_GAP, death_timeout / 10)


class Backoff:
    """The gaps between looks: `first`, doubling up to `longest` (at least `first`)."""

    def __init__(self, first: float, longest: float = LONGEST_GAP) -> None:
        self.first = first
        self.longest = max(first, longest)
        self._gap = first
        self._next = -math.inf  # the first look is due at once

    def _next_gap(self) -> float:
        gap = self._gap
        self._gap = min(2 * gap, self.longest)
        return gap

    def sleep(self) -> None:
        """For a wait whose every pass is a look: sleep until the next."""
        time.sleep(self._next_gap())

    def due(self) -> bool:
        """For a wait that also does something cheap more often: whether a look is due now (then the next one
        is due a gap later)."""
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + self._next_gap()
        return True

    def reset(self) -> None:
        """Something changed: the next look is due at once, and the gaps start over."""
        self._gap = self.first
        self._next = -math.inf
