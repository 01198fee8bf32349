"""Progress of a run: a tqdm bar on a terminal, otherwise one log line every `interval` seconds
(Slurm logs are files: a bar would write a carriage-return soup into them).

Documents are counted as the workers' batches finish (`documents_classified`, fed by the workers' progress
events), so a file that takes hours shows progress from its first minutes; files, pieces and bytes when
their outputs are written. The ETA comes from the input bytes done, which finished units and the batches
of units in flight both advance."""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)


def format_duration(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):  # NaN or unknown
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class Progress:
    """Counts files, pieces, documents and input bytes of this run; `tick()` is called from the driver
    loop at least once a second. `documents_classified` may be called from another thread (the Dask
    client's event handler)."""

    def __init__(
        self, total_files: int, *, interval: float, total_bytes: int = 0, use_bar: bool | None = None
    ):
        self.total_files = total_files
        self.total_bytes = total_bytes
        self.interval = max(0.1, float(interval))
        self.files_done = 0
        self.files_failed = 0
        self.pieces_done = 0
        self.documents = 0.0
        self.bytes_done = 0.0
        self._in_flight: dict[str, tuple[float, float]] = {}  # unit -> (documents, bytes) seen in its batches
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self._last_log = self.started
        if use_bar is None:
            use_bar = sys.stderr.isatty()
        self._bar: Any = None
        if use_bar and total_files:
            from tqdm import tqdm

            self._bar = tqdm(
                total=max(1, total_bytes), unit="B", unit_scale=True, dynamic_ncols=True, file=sys.stderr
            )

    def unit_started(self, unit: str) -> None:
        with self._lock:
            self._in_flight[unit] = (0, 0.0)

    def documents_classified(self, unit: str, documents: float, unit_bytes: float) -> None:
        """Batches of `unit` (a task's key) finished: `documents` more, worth `unit_bytes` of its input.
        Events of a unit no longer in flight (late, or from an abandoned task) are ignored."""
        with self._lock:
            if unit not in self._in_flight:
                return
            seen_docs, seen_bytes = self._in_flight[unit]
            self._in_flight[unit] = (seen_docs + documents, seen_bytes + unit_bytes)
            self.documents += documents
            self.bytes_done += unit_bytes
        self._refresh(unit_bytes)

    def unit_done(self, unit: str, *, documents: int, size: int, files: int = 0, pieces: int = 0) -> None:
        """A task finished: its exact documents and bytes replace what its batches announced."""
        with self._lock:
            seen_docs, seen_bytes = self._in_flight.pop(unit, (0, 0.0))
            self.documents += documents - seen_docs
            self.bytes_done += size - seen_bytes
            self.files_done += files
            self.pieces_done += pieces
        self._refresh(size - seen_bytes)

    def unit_dropped(self, unit: str) -> None:
        """A task failed or was abandoned: what its batches announced is taken back."""
        with self._lock:
            seen_docs, seen_bytes = self._in_flight.pop(unit, (0, 0.0))
            self.documents -= seen_docs
            self.bytes_done -= seen_bytes
        self._refresh(-seen_bytes)

    def file_failed(self) -> None:
        self.files_failed += 1
        self._refresh(0)

    def docs_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.documents / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float:
        if self.bytes_done <= 0 or not self.total_bytes:
            return float("inf")
        elapsed = time.monotonic() - self.started
        return elapsed / self.bytes_done * max(0.0, self.total_bytes - self.bytes_done)

    def line(self) -> str:
        finished = self.files_done + self.files_failed
        percent = 100.0 * self.bytes_done / self.total_bytes if self.total_bytes else 100.0
        pieces = f", {self.pieces_done} pieces" if self.pieces_done else ""
        return (
            f"progress: {finished}/{self.total_files} files{pieces}, {self.files_failed} failed, "
            f"{int(self.documents)} documents, {self.docs_per_second():.1f} docs/s, "
            f"{percent:.1f}% of the input bytes, ETA {format_duration(self.eta_seconds())}"
        )

    def tick(self) -> None:
        now = time.monotonic()
        if self._bar is None and now - self._last_log >= self.interval:
            self._last_log = now
            logger.info("%s", self.line())

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        logger.info("%s", self.line())

    def _refresh(self, advanced_bytes: float) -> None:
        if self._bar is not None:
            self._bar.update(advanced_bytes)
            self._bar.set_postfix(
                files=f"{self.files_done + self.files_failed}/{self.total_files}",
                docs=int(self.documents),
                docs_per_s=f"{self.docs_per_second():.1f}",
                refresh=False,
            )
