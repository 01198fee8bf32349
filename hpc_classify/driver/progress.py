"""Progress of a run: a tqdm bar on a terminal, otherwise one log line every `interval` seconds
(Slurm logs are files: a bar would write a carriage-return soup into them)."""

from __future__ import annotations

import logging
import sys
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
    """Counts files and documents of this run; `tick()` is called from the driver loop at least once a second."""

    def __init__(self, total_files: int, *, interval: float, use_bar: bool | None = None):
        self.total_files = total_files
        self.interval = max(0.1, float(interval))
        self.files_done = 0
        self.files_failed = 0
        self.documents = 0
        self.started = time.monotonic()
        self._last_log = self.started
        if use_bar is None:
            use_bar = sys.stderr.isatty()
        self._bar: Any = None
        if use_bar and total_files:
            from tqdm import tqdm

            self._bar = tqdm(total=total_files, unit="file", dynamic_ncols=True, file=sys.stderr)

    def file_done(self, documents: int) -> None:
        self.files_done += 1
        self.documents += documents
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(
                docs=self.documents, docs_per_s=f"{self.docs_per_second():.1f}", refresh=False
            )

    def file_failed(self) -> None:
        self.files_failed += 1
        if self._bar is not None:
            self._bar.update(1)

    def docs_per_second(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.documents / elapsed if elapsed > 0 else 0.0

    def eta_seconds(self) -> float:
        finished = self.files_done + self.files_failed
        if not finished:
            return float("inf")
        elapsed = time.monotonic() - self.started
        return elapsed / finished * (self.total_files - finished)

    def line(self) -> str:
        finished = self.files_done + self.files_failed
        percent = 100.0 * finished / self.total_files if self.total_files else 100.0
        return (
            f"progress: {finished}/{self.total_files} files ({percent:.1f}%), {self.files_failed} failed, "
            f"{self.documents} documents, {self.docs_per_second():.1f} docs/s, "
            f"ETA {format_duration(self.eta_seconds())}"
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
