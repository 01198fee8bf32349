"""A file's one output, assembled from its done pieces in input order, then its completion marker.

The output format's `assemble` joins the pieces (JSONL: bytes concatenated, compressed pieces being whole
gzip members, zstd frames or bzip2/xz streams; Parquet: row groups streamed into one file). Never the whole file in memory. The output is written atomically, then the completion marker, then the pieces are removed: a kill
at any point leaves either the pieces (assembled again) or the finished file (its pieces removed by the
next run's plan).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from hpc_classify.cluster.slurm_env import current_node_name
from hpc_classify.driver import piece_files
from hpc_classify.driver.piece_files import PieceLayout
from hpc_classify.driver.piece_task import check_unchanged
from hpc_classify.driver.task import (
    FileSettings,
    file_destination,
    owner_fence,
    remove_earlier_quarantines,
    remove_leftover_output,
)
from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import InputFile
from hpc_classify.io.formats import JSONL, output_format
from hpc_classify.io.hashing import file_sha256
from hpc_classify.io.markers import CompletionMarker, iso_time, write_marker
from hpc_classify.io.writers import write_atomically

logger = logging.getLogger(__name__)

# How long an assembly waits for piece markers it does not see yet (wait_for_pieces): NFS caches a
# directory's entries and a name's absence for acdirmax, 60 s by default.
MARKER_WAIT_SECONDS = 120.0


def piece_indices_needed(
    layout: PieceLayout, done: set[int], output_dir: str, relpath: str
) -> list[int] | None:
    """The pieces that make the whole file, when all are done; None while some are missing. A streamed
    file is whole once the piece marked `last` and every piece before it are done."""
    if layout.pieces is not None:
        indices = [p.index for p in layout.pieces]
        return indices if done.issuperset(indices) else None
    if not done:
        return None
    top = max(done)
    if set(range(top + 1)) - done:
        return None
    (last,) = piece_files.read_piece_markers(output_dir, relpath, [top])
    return list(range(top + 1)) if last.extra.get("last") else None


def wait_for_pieces(
    path: str, layout: PieceLayout, output_dir: str, relpath: str, *, timeout: float | None = None
) -> list[int]:
    """The pieces that make the whole file, once their markers are seen; InputFileError naming the first
    missing marker when they are not seen within `timeout` (MARKER_WAIT_SECONDS).

    The assembly runs because the driver knows every piece is done (their tasks returned after writing
    their markers), but this node may not see the markers yet: an NFS client serves a directory's cached
    entries, and a name's cached absence, for up to a minute after a worker on another node wrote it. A
    planned layout's markers are looked up by their known names, never by listing; a streamed file's count
    is only known from its pieces, so it is listed again until whole. Each look is a fresh stat or listing,
    the interval between them doubling up to a second: the wait ends as soon as the markers are seen."""
    timeout = MARKER_WAIT_SECONDS if timeout is None else timeout
    deadline = time.monotonic() + timeout
    interval = 0.02
    seen: set[int] = set()  # markers are never removed meanwhile: each is stat'ed until seen once
    while True:
        indices, missing = _whole_or_missing(layout, output_dir, relpath, seen)
        if indices is not None:
            return indices
        left = deadline - time.monotonic()
        if left <= 0:
            raise InputFileError(
                path,
                f"cannot assemble: {missing} not found within {timeout:g} s, although its task finished",
                hint="rerun to resume: the pieces done are kept, a missing piece is classified again "
                "(an output directory on NFS: check that all nodes mount it with the same options)",
            )
        time.sleep(min(interval, left))
        interval = min(interval * 2, 1.0)


def _whole_or_missing(
    layout: PieceLayout, output_dir: str, relpath: str, seen: set[int]
) -> tuple[list[int] | None, str]:
    """(the pieces that make the whole file, "") or (None, which marker is missing, in words). A planned
    layout's markers found are added to `seen` and not looked up again (10,000 pieces: one stat each)."""
    if layout.pieces is not None:
        for piece in layout.pieces:
            if piece.index in seen:
                continue
            marker = piece_files.piece_marker_path(output_dir, relpath, piece.index)
            if not os.path.exists(marker):
                return None, f"the marker of piece {piece.index} of {len(layout.pieces)} ({marker})"
            seen.add(piece.index)
        return [p.index for p in layout.pieces], ""
    done = piece_files.done_piece_indices(output_dir, relpath)
    indices = piece_indices_needed(layout, done, output_dir, relpath)
    if indices is not None:
        return indices, ""
    gaps = sorted(set(range(max(done, default=-1) + 1)) - done)
    index = gaps[0] if gaps else max(done, default=-1) + 1
    marker = piece_files.piece_marker_path(output_dir, relpath, index)
    return None, f"the marker of streamed piece {index} ({marker}; no piece marked last is seen)"


def assemble_file(input_file: InputFile, layout: PieceLayout, settings: FileSettings) -> CompletionMarker:
    """Write the file's output and quarantine from its pieces, then its completion marker; remove the
    pieces; return the marker."""
    started = time.time()
    out, relpath = settings.output_dir, input_file.relpath
    stat = check_unchanged(input_file.path, layout)
    indices = wait_for_pieces(input_file.path, layout, out, relpath)
    markers = piece_files.read_piece_markers(out, relpath, indices)
    if stale := sorted(m.extra["piece"] for m in markers if m.fingerprint != settings.fingerprint):
        raise InputFileError(
            input_file.path,
            f"pieces {stale} were classified by another run (a fingerprint other than {settings.fingerprint})",
            hint=f"remove {piece_files.pieces_dir(out, relpath)}: its pieces will be classified again",
        )
    destination = file_destination(settings, relpath)
    # The pieces where they are now, not the absolute paths their markers recorded: the output directory
    # may have moved, or be mounted elsewhere on the node of a requeue.
    # A piece of no output row wrote no file (task.py); a file all of whose pieces did gets none either.
    parts = [piece_files.piece_output_path(out, relpath, m.extra["piece"]) for m in markers if m.output_path]
    document_format = output_format(settings.output_format)  # by the settings: a piece's name says none
    # Each rename into a final name first checks that this run still owns the directory (run_owner.py).
    output_path = destination.output_path
    if parts:
        write_atomically(
            output_path,
            lambda f: document_format.assemble(parts, f, source=input_file.path),
            before_rename=owner_fence(settings, output_path),
        )
    else:
        output_path = remove_leftover_output(output_path, owner_fence(settings, output_path))
    # By the name each piece's marker recorded, in the pieces' directory now: pieces of an older version
    # named their quarantines otherwise.
    quarantines = [
        os.path.join(piece_files.pieces_dir(out, relpath), os.path.basename(m.quarantine_path))
        for m in markers
        if m.quarantine_path
    ]
    quarantine_fence = owner_fence(settings, destination.quarantine_path)
    remove_earlier_quarantines(destination.quarantine_path, bool(quarantines), quarantine_fence)
    if quarantines:  # JSONL, whatever the output format
        write_atomically(
            destination.quarantine_path,
            lambda f: JSONL.assemble(quarantines, f),
            before_rename=quarantine_fence,
        )
    # The pieces checked size and mtime against the layout, which holds the content hash.
    input_sha256 = layout.input_sha256 or file_sha256(input_file.path)
    finished = time.time()
    marker = CompletionMarker(
        input_path=input_file.path,
        input_size=stat.st_size,
        input_mtime=stat.st_mtime,
        output_path=output_path,
        rows_in=sum(m.rows_in for m in markers),
        rows_out=sum(m.rows_out for m in markers),
        rows_bad=sum(m.rows_bad for m in markers),
        label_counts=_sum_counts(m.label_counts for m in markers),
        bad_rows_by_kind=dict(sum((Counter(m.bad_rows_by_kind or {}) for m in markers), Counter())),
        seconds=round(sum(m.seconds for m in markers) + finished - started, 6),
        node=current_node_name(),
        worker=settings.worker,
        fingerprint=settings.fingerprint,
        quarantine_path=os.path.abspath(destination.quarantine_path) if quarantines else None,
        started_at=min(m.started_at or "" for m in markers) or None,
        finished_at=iso_time(finished),
        output_size=os.path.getsize(output_path) if output_path else 0,
        input_sha256=input_sha256,
        extra={
            "pieces": [_piece_summary(m) for m in markers],
            "piece_bytes": layout.piece_bytes,
            **({"engines": engines} if (engines := _engines(markers)) else {}),
        },
    )
    write_marker(
        destination.marker_path, marker, before_rename=owner_fence(settings, destination.marker_path)
    )
    piece_files.remove_pieces(out, relpath)
    logger.debug("%s: assembled from %d piece(s)", relpath, len(markers))
    return marker


def _piece_summary(marker: CompletionMarker) -> dict[str, Any]:
    """What the file's marker keeps of each piece: who classified it, when, and how much."""
    return {"piece": marker.extra["piece"], **marker.work_summary()}


def _engines(markers: Sequence[CompletionMarker]) -> dict[str, str] | None:
    """How the engines ran, as the first piece that says records it (a marker holds one description per
    classifier; the pieces may have run on several workers alike)."""
    return next((m.extra["engines"] for m in markers if m.extra.get("engines")), None)


def _sum_counts(all_counts: Any) -> dict[str, dict[str, int]]:
    total: dict[str, Counter] = {}
    for counts in all_counts:
        for column, values in counts.items():
            total.setdefault(column, Counter()).update(values)
    return {column: dict(values) for column, values in total.items()}
