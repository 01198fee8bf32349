"""Where each row of a dataset partition came from: its file and its row there, kept beside the data.

A partition read from files has NeMo's index (a RangeIndex from 0), so the index no longer says which row
of which file a row is; the dataset reader records it in the frame's `attrs[FILE_ROWS]` as a `FileRows`,
and an error about a row (a missing text) names the file's row. Looked up by index label, so it stays right
after the rows are filtered or sorted (pandas carries `attrs` through such operations); not after rows were
dropped and the index renumbered (then the partition's row is named instead).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any

import pandas as pd

FILE_ROWS = "hpc_classify.file_rows"  # the frame `attrs` key


@dataclass(frozen=True)
class FileRows:
    """Consecutive runs of labels: labels [starts[i], starts[i] + counts[i]) are rows firsts[i]... of paths[i]."""

    starts: tuple[int, ...]
    counts: tuple[int, ...]
    paths: tuple[str, ...]
    firsts: tuple[int, ...]

    def __deepcopy__(self, memo: dict) -> FileRows:
        # Immutable: pandas deep-copies attrs on every operation, and a packed partition has one run per file.
        return self

    def renumbered(self, frame: pd.DataFrame) -> bool:
        """Whether `frame`'s labels can no longer be ours: rows were dropped and the index counts from 0
        again (`df[mask].reset_index(drop=True)`), so label k is not the k-th row read. (A reset after a
        sort alone keeps the row count: it cannot be told from the partition as read.)"""
        index = frame.index
        renumbered = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        return renumbered and len(frame) != sum(self.counts)

    def locate(self, label: Any) -> tuple[str, int] | None:
        """(path, 0-based row in that file) of the row labelled `label`, or None when it is not one of ours."""
        if isinstance(label, bool) or not hasattr(label, "__index__"):
            return None
        label = int(label)
        i = bisect.bisect_right(self.starts, label) - 1
        if i < 0 or label >= self.starts[i] + self.counts[i]:
            return None
        return self.paths[i], self.firsts[i] + label - self.starts[i]


def file_rows(runs: list[tuple[str, int, int]]) -> FileRows:
    """From (path, first row in the file, row count) per file or piece, in the partition's row order."""
    starts, at = [], 0
    for _, _, count in runs:
        starts.append(at)
        at += count
    return FileRows(
        tuple(starts),
        tuple(c for _, _, c in runs),
        tuple(p for p, _, _ in runs),
        tuple(f for _, f, _ in runs),
    )


def file_run(frame: Any, path: str, piece: bool) -> tuple[str, int, int] | None:
    """(path, first file row, row count) of a frame with rows read from one file: a piece's index is its
    rows' positions in the file (io/pieces), a whole file's counts from 0; None when the index is not file
    rows (a pickle's own)."""
    index = frame.index
    first = index[0]
    if isinstance(index, pd.RangeIndex):
        return (path, int(first), len(frame)) if index.step == 1 and (piece or first == 0) else None
    if piece and pd.api.types.is_integer_dtype(index) and index.is_monotonic_increasing:
        if int(index[-1]) - int(first) + 1 == len(
            frame
        ):  # consecutive rows (on_bad_row="error": none skipped)
            return path, int(first), len(frame)
    return None
