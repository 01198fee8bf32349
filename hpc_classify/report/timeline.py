"""Where the time went, from the markers' start and end times: documents/s over time, and each worker's
busy intervals (merged where they touch, so idle gaps stay visible at any corpus size)."""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_THROUGHPUT_BINS = 200
# Busy intervals of one worker closer than this share of the run's span are drawn as one bar: about a pixel
# of the chart, so the page stays small for 100,000 files while any visible idle gap is kept.
MERGE_SHARE = 1 / 2000
MIN_SECONDS = 1e-3  # a file finished within the clock's resolution still took some time


@dataclass(frozen=True)
class Interval:
    """One file's work: on which worker, from when to when (POSIX seconds), how many documents."""

    worker: str  # "<node>/<worker>"
    start: float
    end: float
    documents: int


def marker_interval(
    worker: str, started_at: str | None, finished_at: str | None, seconds: float, documents: int
) -> Interval | None:
    """The marker's interval, or None when it records no time (markers written before times were kept).
    A marker with only `finished_at` (none is written so today) starts `seconds` earlier."""
    if finished_at is None:
        return None
    end = parse_time(finished_at)
    start = parse_time(started_at) if started_at else end - max(seconds, 0.0)
    return Interval(worker, start, max(end, start + MIN_SECONDS), documents)


def parse_time(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def iso_time(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="milliseconds")


def throughput_series(intervals: list[Interval]) -> dict[str, Any]:
    """Documents/s in at most MAX_THROUGHPUT_BINS equal bins over the span of the intervals; each file's
    documents are spread evenly over its interval (so the series integrates to the documents done)."""
    if not intervals:
        return {"start": None, "bin_seconds": None, "documents_per_second": []}
    starts = np.array([i.start for i in intervals])
    ends = np.array([i.end for i in intervals])
    rates = np.array([i.documents for i in intervals], dtype=np.float64) / (ends - starts)
    first, last = float(starts.min()), float(ends.max())
    bin_seconds = _nice_bin_width((last - first) / MAX_THROUGHPUT_BINS)
    bins = max(1, math.ceil((last - first) / bin_seconds))
    edges = first + bin_seconds * np.arange(bins + 1)
    done = _documents_done_by(edges, starts, rates) - _documents_done_by(edges, ends, rates)
    per_bin = np.diff(done) / bin_seconds
    return {
        "start": iso_time(first),
        "bin_seconds": bin_seconds,
        "documents_per_second": [round(float(v), 3) for v in per_bin],
    }


def _documents_done_by(times: np.ndarray, onsets: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """sum_i rates_i * max(0, t - onsets_i) at each t: ramps that start at the onsets, by prefix sums."""
    order = np.argsort(onsets)
    onsets, rates = onsets[order], rates[order]
    rate_sum = np.concatenate([[0.0], np.cumsum(rates)])
    weighted = np.concatenate([[0.0], np.cumsum(rates * onsets)])
    started = np.searchsorted(onsets, times, side="right")
    return times * rate_sum[started] - weighted[started]


def _nice_bin_width(seconds: float) -> float:
    """The smallest of 1, 2, 5 x 10^k seconds (at least 0.1 s) not below `seconds`."""
    seconds = max(seconds, 0.1)
    power = 10.0 ** math.floor(math.log10(seconds))
    for step in (1, 2, 5, 10):
        if step * power >= seconds - 1e-12:
            return round(step * power, 6)
    return round(10 * power, 6)  # unreachable: 10 x power > seconds


def worker_timeline(intervals: list[Interval]) -> list[dict[str, Any]]:
    """Per worker (sorted by name): files, busy seconds (union of its intervals) and the merged busy
    segments as [start, end] in seconds from the run's first start."""
    if not intervals:
        return []
    origin = min(i.start for i in intervals)
    tolerance = (max(i.end for i in intervals) - origin) * MERGE_SHARE
    by_worker: dict[str, list[Interval]] = defaultdict(list)
    for interval in intervals:
        by_worker[interval.worker].append(interval)
    timeline = []
    for worker in sorted(by_worker):
        own = sorted(by_worker[worker], key=lambda i: i.start)
        segments: list[list[float]] = []
        busy = 0.0
        current = [own[0].start, own[0].end]
        covered_end = own[0].end
        busy_start = own[0].start
        for interval in own[1:]:
            if interval.start > covered_end:  # exact union for busy seconds
                busy += covered_end - busy_start
                busy_start = interval.start
            covered_end = max(covered_end, interval.end)
            if interval.start <= current[1] + tolerance:
                current[1] = max(current[1], interval.end)
            else:
                segments.append(current)
                current = [interval.start, interval.end]
        busy += covered_end - busy_start
        segments.append(current)
        timeline.append(
            {
                "worker": worker,
                "files": len(own),
                "busy_seconds": round(busy, 3),
                "segments": [[round(s - origin, 3), round(e - origin, 3)] for s, e in segments],
            }
        )
    return timeline
