"""Completion markers: one small JSON file per finished input, written atomically after its output.

A marker's presence is what makes a file "done" on resume (an output without a marker is redone), so
markers live apart from the outputs under `<output>/_markers/<relpath>.done.json` and are written with
`write_json_atomically`. `iter_marker_relpaths` lists them without parsing (the resume scan; `MarkerListing`
keeps one such scan for the several steps of a run start); `iter_markers` parses them; `read_marker_files` reads
them all once, for the several steps of a run's end (the one-schema step, then the report) and for `status`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.errors import InputFileError
from hpc_classify.io.threaded_map import map_in_threads
from hpc_classify.io.writers import is_temp_file, write_json_atomically

logger = logging.getLogger(__name__)

MARKERS_DIRNAME = "_markers"
MARKER_SUFFIX = ".done.json"
NO_SUCH_MARKER = "no such completion marker"
WORK_SUMMARY_KEYS = (
    "rows_in",
    "rows_out",
    "rows_bad",
    "seconds",
    "node",
    "worker",
    "started_at",
    "finished_at",
)


@dataclass
class CompletionMarker:
    """What one finished input produced; small enough to send from a worker to the driver."""

    input_path: str
    input_size: int
    input_mtime: float
    output_path: str
    rows_in: int
    rows_out: int
    rows_bad: int
    label_counts: dict[str, dict[str, int]]  # per output column: value -> rows (before filter_by)
    seconds: float
    node: str
    worker: str
    fingerprint: str
    quarantine_path: str | None = None
    started_at: str | None = None  # ISO 8601
    finished_at: str | None = None  # ISO 8601
    output_size: int | None = None  # bytes written (the input's are input_size)
    input_sha256: str | None = None  # of the input's bytes as read (resume/status --verify-inputs compare it)
    bad_rows_by_kind: dict[str, int] | None = None  # rows_bad per kind of problem (None: an older marker)
    extra: dict[str, Any] = field(default_factory=dict)  # room for later fields without a format change

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def work_summary(self) -> dict[str, Any]:
        """Who classified it, when, and how much: what a file's marker keeps of each of its pieces, and what
        tallies read of a marker. (Not `to_dict`, whose deep copy cost 88 us a marker: a report of 50,000
        files spent seconds in it.)"""
        return {key: getattr(self, key) for key in WORK_SUMMARY_KEYS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompletionMarker:
        """Build from a dict; unknown keys (from a newer version) are kept in `extra`, not rejected."""
        known, required = _field_names(cls)
        missing = [name for name in required if name not in data]
        if missing:
            raise ValueError(f"completion marker lacks field(s): {', '.join(missing)}")
        values = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known}
        if extra:
            values["extra"] = {**values.get("extra", {}), **extra}
        return cls(**values)


def iso_time(timestamp: float, timespec: str = "milliseconds") -> str:
    """An epoch time as ISO 8601 in UTC: what markers, summaries and messages show."""
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec=timespec)


@functools.cache
def _field_names(cls: type) -> tuple[frozenset[str], tuple[str, ...]]:
    """(every field, the required ones) of a marker class: looked up once, not per marker (100,000 in a report)."""
    fields = dataclasses.fields(cls)
    return frozenset(f.name for f in fields), tuple(f.name for f in fields if _is_required(f))


def _is_required(f: dataclasses.Field) -> bool:
    return f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING


def marker_path(output_dir: str, relpath: str) -> str:
    """`<output_dir>/_markers/<relpath>.done.json` for the input with this relative path."""
    parts = relpath.replace(os.sep, "/").split("/")
    if os.path.isabs(relpath) or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"marker relpath must be a plain relative path, not {relpath!r}")
    return os.path.join(output_dir, MARKERS_DIRNAME, *parts[:-1], parts[-1] + MARKER_SUFFIX)


def write_marker(
    path: str, marker: CompletionMarker, *, before_rename: Callable[[], None] | None = None
) -> None:
    """Write the marker atomically (its directory is created as needed); `before_rename`: as
    `io.writers.write_atomically`'s."""
    write_json_atomically(path, marker.to_dict(), before_rename=before_rename)


def read_marker(path: str) -> CompletionMarker:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
        return CompletionMarker.from_dict(data)
    except FileNotFoundError:
        raise InputFileError(path, NO_SUCH_MARKER) from None
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError
        raise InputFileError(
            path,
            f"corrupt completion marker ({exc})",
            hint="delete it: the file it stands for will be redone",
        ) from exc


def iter_marker_relpaths(output_dir: str) -> Iterator[str]:
    """Yield the relpath of every marker (forward slashes), without reading them; order is not sorted."""
    for relpath, _ in _iter_marker_files(output_dir):
        yield relpath


class MarkerListing:
    """Which relpaths have a marker, from one scan of `_markers/` (made when first asked): a run start asks
    it in several steps (changed inputs, lost outputs, pending files), and each scan of 100,000 markers on
    Lustre is a long walk. A step that removes a marker does so through `remove`, so the listing stays true."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self._relpaths: set[str] | None = None

    def relpaths(self) -> set[str]:
        """The relpaths with a marker (a copy: the listing's own changes only through `remove`)."""
        return set(self._listed())

    def __contains__(self, relpath: object) -> bool:
        return relpath in self._listed()

    def remove(self, relpath: str) -> None:
        """Delete `relpath`'s marker (one already gone is fine) and forget it."""
        try:
            os.remove(marker_path(self.output_dir, relpath))
        except FileNotFoundError:
            pass
        if self._relpaths is not None:
            self._relpaths.discard(relpath)

    def _listed(self) -> set[str]:
        if self._relpaths is None:
            self._relpaths = set(iter_marker_relpaths(self.output_dir))
        return self._relpaths


def iter_markers(output_dir: str) -> Iterator[CompletionMarker]:
    """Yield every readable marker under `output_dir`; corrupt ones are logged and skipped (redone on resume)."""
    for _, marker in iter_markers_with_relpaths(output_dir):
        yield marker


def iter_markers_with_relpaths(output_dir: str) -> Iterator[tuple[str, CompletionMarker]]:
    """(relpath, marker) for every readable marker, in the order found; corrupt ones are logged and skipped, as
    by `iter_markers`."""
    for found in _iter_marker_files(output_dir):
        relpath, marker = _read_or_error(found)
        if isinstance(marker, CompletionMarker):
            yield relpath, marker
        else:
            logger.warning("skipping unreadable marker: %s", marker)


@dataclass
class MarkerFiles:
    """Every marker of an output directory as one pass read it (`read_marker_files`). On a parallel file system
    each marker read is a metadata round trip: a run's end reads them once and hands them from step to step, and
    a step that rewrites a marker puts the new one here (`update`), so that they stay what the directory holds."""

    found: dict[str, CompletionMarker] = field(default_factory=dict)  # relpath -> marker, in the order found
    unreadable: dict[str, InputFileError] = field(default_factory=dict)  # relpath -> why it could not be read
    complete: bool = True  # False: a stop ended the reads, some markers are missing

    def update(self, relpath: str, marker: CompletionMarker) -> None:
        """`relpath`'s marker as just written."""
        self.found[relpath] = marker
        self.unreadable.pop(relpath, None)

    def read_again(self, output_dir: str, relpath: str) -> CompletionMarker | None:
        """`relpath`'s marker as the directory holds it now, kept here (None: unreadable or gone since)."""
        _, marker = _read_or_error((relpath, marker_path(output_dir, relpath)))
        if isinstance(marker, CompletionMarker):
            self.update(relpath, marker)  # in its place: the report's shards keep their order
            return marker
        self.found.pop(relpath, None)
        if marker.reason != NO_SUCH_MARKER:
            self.unreadable[relpath] = marker
        return None


def read_marker_files(
    output_dir: str, threads: int = 1, *, stopped: Callable[[], bool] | None = None
) -> MarkerFiles:
    """Every marker under `output_dir`, `threads` read at once; `stopped()`: asked as markers are taken, once
    true none other is read (`complete` False)."""
    markers = MarkerFiles()
    for relpath, marker in map_in_threads(_read_or_error, _iter_marker_files(output_dir), threads, stopped):
        if isinstance(marker, CompletionMarker):
            markers.found[relpath] = marker
        else:
            markers.unreadable[relpath] = marker
    markers.complete = stopped is None or not stopped()
    return markers


def _read_or_error(found: tuple[str, str]) -> tuple[str, CompletionMarker | InputFileError]:
    relpath, path = found
    try:
        return relpath, read_marker(path)
    except InputFileError as exc:
        return relpath, exc


def _iter_marker_files(output_dir: str) -> Iterator[tuple[str, str]]:
    """(relpath, marker file path) pairs, found with os.scandir: DirEntry knows its type, so no stat per file."""
    root = os.path.join(output_dir, MARKERS_DIRNAME)
    if not os.path.isdir(root):
        return
    stack = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, f"{prefix}{entry.name}/"))
                elif entry.name.endswith(MARKER_SUFFIX) and not is_temp_file(entry.name):
                    yield prefix + entry.name[: -len(MARKER_SUFFIX)], entry.path
