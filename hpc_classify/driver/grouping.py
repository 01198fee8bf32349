"""Small files travel together: the driver's queue of pending files, taken one task at a time.

A task is one file, or a group of small files that one worker classifies as one stream of documents
(driver/file_group.py), so that their documents share length-sorted, full batches instead of each file
ending in a short, ragged one, and the per-task overhead is paid once per group. Outputs and markers
stay per file. A group is bounded in bytes (`group_bytes`) and files, and never takes more than an even
share of what is queued, so that a few small files still spread over every worker.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from hpc_classify.driver.plan import PlannedFile

# Each file of a group costs its own output, quarantine check and marker (fsyncs) at the end of the task,
# and a kill loses the whole group's work: bound the count as well as the bytes.
MAX_FILES_PER_GROUP = 256


class FileQueue:
    """Pending files in order (largest first), with their total size, handed out as task groups. A
    piece job of a large file (driver/pieces.py) takes the place of its file and is always taken alone.

    A file that failed once is retried alone: a file that kills its worker cannot take others down with it
    twice, and its retries are counted against it only."""

    def __init__(self, files: Iterable[PlannedFile] = ()):
        self._files: deque[PlannedFile] = deque(files)
        self._alone: set[str] = set()
        self.queued_bytes = sum(f.size for f in self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __bool__(self) -> bool:
        return bool(self._files)

    def retry_first(self, planned: Any) -> None:
        """Put a failed file (or piece job) back at the front, to be taken alone."""
        self._files.appendleft(planned)
        self._alone.add(planned.relpath)
        self.queued_bytes += planned.size

    def peek(self) -> Any:
        return self._files[0]

    def upcoming(self, count: int) -> Iterator[Any]:
        """The next `count` queued items (files, piece jobs), the head first, without taking them."""
        return itertools.islice(self._files, count)

    def replace_first(self, jobs: Sequence[Any]) -> None:
        """Put `jobs` (a large file's piece jobs) in place of the file at the front."""
        self._pop()
        for job in reversed(jobs):
            self._files.appendleft(job)
            self.queued_bytes += job.size

    def push_front(self, job: Any) -> None:
        """Run `job` next (a file's assembly, once its last piece is done)."""
        self._files.appendleft(job)
        self.queued_bytes += job.size

    def take(
        self,
        budget: int,
        alone: Callable[[PlannedFile], bool] = lambda _: False,
        weight: Callable[[PlannedFile], int] = lambda f: f.size,
    ) -> list[PlannedFile]:
        """The next task's files: the next file, and while they fit, the files after it, at most `budget`
        bytes in all (`group_budget`; 0: one file), each counted as `weight` says (what its read holds:
        decompressed). The group ends before a file for which `alone` is true (one to go in pieces: the
        queue's head when its turn comes)."""
        group = [self._pop()]
        if budget <= 0 or group[0].relpath in self._alone or not isinstance(group[0], PlannedFile):
            return group
        total = weight(group[0])
        while (
            self._files
            and len(group) < MAX_FILES_PER_GROUP
            and isinstance(self._files[0], PlannedFile)
            and self._files[0].relpath not in self._alone
            and not alone(self._files[0])
            and total + weight(self._files[0]) <= budget
        ):
            group.append(self._pop())
            total += weight(group[-1])
        return group

    def _pop(self) -> PlannedFile:
        planned = self._files.popleft()
        self.queued_bytes -= planned.size
        return planned


def group_budget(group_bytes: int, queued_bytes: int, task_threads: int) -> int:
    """Bytes one task may hold: `group_bytes`, but no more than the queued bytes shared by the cluster's
    task threads (rounded up), so that grouping never leaves a thread idle while another holds all the files. The
    driver computes it once per round of submissions: the tasks of one round get equal shares."""
    if group_bytes <= 0:
        return 0
    return min(group_bytes, math.ceil(queued_bytes / max(1, task_threads)))
