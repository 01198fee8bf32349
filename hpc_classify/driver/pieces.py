"""The driver's side of files in pieces: when a file is cut, which of its pieces are left, when it is whole.

A pending file larger than `piece_bytes` (or one already started in pieces) is expanded, when the queue
reaches it, into jobs: one per remaining piece (plain JSONL, Parquet: any worker can take any piece), or
one stream job (compressed JSONL: read from its first remaining piece to its end), or, when every piece is
done, one assembly job. Its layout is written then, before its first piece runs, and kept for the file's
life: a rerun with another --piece-bytes keeps it. What a rerun needs is recomputed from the pieces directory
(each piece's marker looked up by name, never by a listing that may lag on NFS: piece_files.marked_pieces; no
marker parsed but a streamed file's last), so a resume redoes at most the pieces in flight; within a run, the
pieces still to finish are counted in memory. The input's SHA-256 (for --verify-inputs)
is added to the layout by a background thread, so that hashing a large file never holds up the dispatch.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

from hpc_classify.driver import piece_files
from hpc_classify.driver.assembly import piece_indices_needed
from hpc_classify.driver.content_sizes import ContentSizes
from hpc_classify.driver.input_changes import VANISHED, InputChange
from hpc_classify.driver.piece_files import PieceLayout
from hpc_classify.driver.piece_task import PieceWork
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.worker_gpus import WorkerGpus
from hpc_classify.io.formats import format_of
from hpc_classify.io.hashing import HashCancelled, file_sha256
from hpc_classify.io.markers import CompletionMarker, marker_path
from hpc_classify.io.pieces import is_streamed, plan_pieces

logger = logging.getLogger(__name__)

# Device-dependent default for --piece-bytes: a piece should take minutes, not hours. On CPU a worker
# classifies about 5-50 documents/s (2-64 cores; about 10-100 KB/s of 2 kB documents), on a GPU about
# 800-2,000 (2-4 MB/s): 4 MiB is 1-7 minutes on CPU, 256 MiB 1-2 minutes on a GPU.
CPU_PIECE_BYTES = 4 << 20
GPU_PIECE_BYTES = 256 << 20


@dataclass(frozen=True)
class PieceJob:
    """A queued job for a file in pieces: `work` (a piece, or a stream from a piece on), or, with work
    None, the assembly of its output. `relpath` is the job's key (attempts, task names)."""

    planned: PlannedFile
    work: PieceWork | None
    size: int

    @property
    def relpath(self) -> str:
        if self.work is None:
            return f"{self.planned.relpath}#assemble"
        if self.work.piece is None:
            return f"{self.planned.relpath}#stream-from-{self.work.first_index}"
        return f"{self.planned.relpath}#piece-{self.work.piece.index}"

    @property
    def path(self) -> str:
        return self.planned.path

    def describe(self) -> str:
        if self.work is None:
            return "assembling its output"
        if self.work.piece is None:
            return f"pieces {self.work.first_index} on (streamed)"
        count = len(self.work.layout.pieces or ())
        return f"piece {self.work.piece.index} of {count}"


def default_piece_bytes(device: str, gpus: WorkerGpus | None = None) -> int:
    """The --piece-bytes default for the workers' device: "cuda", "cpu", or for "auto" whether the run's
    workers see GPUs (`gpus`; None: the driver's node; the driver may run on a login node without any)."""
    if device == "auto":
        return GPU_PIECE_BYTES if (gpus or WorkerGpus(None)).seen else CPU_PIECE_BYTES
    return GPU_PIECE_BYTES if device == "cuda" else CPU_PIECE_BYTES


class PieceScheduler:
    """Expands large pending files into piece jobs and notices when a file's pieces are all done."""

    def __init__(self, output_dir: str, piece_bytes: int, fingerprint: str | None = None):
        self.output_dir = output_dir
        self.piece_bytes = piece_bytes
        self.fingerprint = fingerprint  # the run's, recorded in each new layout (None: a scheduler alone)
        self.started = set(piece_files.files_in_pieces(output_dir))  # files with a layout already
        self._remaining: dict[str, set[int]] = {}  # per file: its pieces not yet done in this run
        self._assembly_queued: set[str] = set()  # files whose assembly `after` returned
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="layout-sha256")
        self._hash_requested: set[str] = set()
        self._closing = threading.Event()
        self._sizes = ContentSizes(piece_bytes)  # per file: content_bytes, found once, ahead of the queue

    def close(self, *, abandon: bool = False) -> None:
        """Wait for the hash being computed, or with `abandon` (a stop: a 100 GB file takes minutes, more
        than a stop's grace) drop it; hashes not begun are dropped. The next run computes what is missing.
        Sizes measured ahead and not begun are dropped; with `abandon`, those running are not waited for."""
        if abandon:
            self._closing.set()
        self._sizes.close(wait=not abandon)
        self._hashing.shutdown(wait=True, cancel_futures=True)

    def needs_pieces(self, planned: PlannedFile) -> bool:
        return planned.relpath in self.started or (0 < self.piece_bytes < self.content_bytes(planned))

    def measure_ahead(self, upcoming: Iterable[Any]) -> None:
        """Start finding `content_bytes` of the queue's next items (`upcoming`, a bounded window) in the
        background, so that asking for them later does not decompress on the dispatch thread."""
        self._sizes.measure_ahead(
            f for f in upcoming if isinstance(f, PlannedFile) and f.relpath not in self.started
        )

    def content_bytes(self, planned: PlannedFile) -> int:
        """What a whole read of the file holds, exact up to piece_bytes: a worker's memory is bounded by
        piece_bytes of decoded data, whatever the compression (io.pieces.content_bytes; its size on disk
        when files are not cut). Found once per file: ahead of the queue where `measure_ahead` named it
        (driver/content_sizes.py), else when the queue reaches it."""
        # A compressed file no larger than a piece on disk is decompressed up to piece_bytes + 1 bytes:
        # no header bounds the whole file (gzip's ISIZE is modulo 2**32 and the last member's), and sending
        # every such file to the stream path instead would give each small shard a pieces directory, a
        # piece, a marker and an assembly task, and no group. Decompressing 4 MiB takes 6-16 ms (zstd, gzip;
        # xz 46 ms, bz2 0.12 s), under 1% of classifying it on CPU (docs/pieces.md).
        return self._sizes.of(planned)

    def expand(self, planned: PlannedFile) -> list[PieceJob]:
        """The file's remaining jobs (its layout written first if it has none)."""
        layout = piece_files.read_layout(self.output_dir, planned.relpath)
        done: set[int] = set()
        if layout is None:
            # A pieces directory without a layout holds nothing of this version (a layout is written before
            # any piece, removed after all): leftovers of an interrupted removal, never to count as done.
            shutil.rmtree(piece_files.pieces_dir(self.output_dir, planned.relpath), ignore_errors=True)
            layout = self._new_layout(planned)
            piece_files.write_layout(self.output_dir, planned.relpath, layout)
            self.started.add(planned.relpath)
        else:
            done = piece_files.marked_pieces(self.output_dir, planned.relpath, layout)
            if layout.piece_bytes != self.piece_bytes:
                logger.info(
                    "%s: continuing with the %d-byte pieces it was started with (not %d)",
                    planned.relpath,
                    layout.piece_bytes,
                    self.piece_bytes,
                )
        if layout.input_sha256 is None and planned.relpath not in self._hash_requested:
            self._hash_requested.add(planned.relpath)  # a stream's retry expands its file again
            self._hashing.submit(self._add_sha256, planned, layout)
        if piece_indices_needed(layout, done, self.output_dir, planned.relpath) is not None:
            return [PieceJob(planned, None, 0)]
        if layout.pieces is None:
            return [self._stream_job(planned, layout, done)]
        self._remaining[planned.relpath] = {p.index for p in layout.pieces} - done
        return [
            PieceJob(
                planned, PieceWork(planned.input_file, layout, piece), _piece_size(planned, layout, piece)
            )
            for piece in layout.pieces
            if piece.index not in done
        ]

    def after(self, job: PieceJob) -> PieceJob | None:
        """The job that follows `job`'s success: the file's assembly once all its pieces are done.

        Decided from what this run knows, never from a listing of the pieces directory: a piece's task
        returns after its marker is written, and a stream's after the piece marked last, but the driver's
        node may not list a marker written on another node yet (NFS caches directory entries). A listing
        that lagged here left the file unassembled, its documents missing from a run that ended "all done".
        The assembly itself waits for the markers it does not see yet (assembly.wait_for_pieces)."""
        relpath = job.planned.relpath
        if job.work is None or relpath in self._assembly_queued:  # one assembly, however pieces report
            return None
        if job.work.piece is None:  # a stream that succeeded read its file to the end
            return self._assembly(job)
        remaining = self._remaining.get(relpath)
        if remaining is None:  # a piece this scheduler did not expand (never in a run): looked up once
            done = piece_files.marked_pieces(self.output_dir, relpath, job.work.layout)
            remaining = {p.index for p in job.work.layout.pieces or ()} - done
            self._remaining[relpath] = remaining
        remaining.discard(job.work.piece.index)
        return None if remaining else self._assembly(job)

    def _assembly(self, job: PieceJob) -> PieceJob:
        self._assembly_queued.add(job.planned.relpath)
        self._remaining.pop(job.planned.relpath, None)
        return PieceJob(job.planned, None, 0)

    def markers_of_failed(self, job: PieceJob) -> list[CompletionMarker]:
        """The piece markers a failed job wrote before it failed (a stream checkpoints as it goes), looked up
        by name: its worker may have died on another node just after writing one, which a listing here may
        not show yet (the done piece would be classified again, or its file failed with no retry left)."""
        work = job.work
        if work is None:
            return []
        out, relpath = self.output_dir, job.planned.relpath
        if work.piece is not None:
            mine = [work.piece.index] if piece_files.piece_marked(out, relpath, work.piece.index) else []
        else:
            mine = sorted(piece_files.marked_pieces(out, relpath, work.layout, work.first_index))
        return piece_files.read_piece_markers(out, relpath, mine)

    def _new_layout(self, planned: PlannedFile) -> PieceLayout:
        stat = os.stat(planned.path)
        pieces = None
        if not is_streamed(planned.path):
            pieces = tuple(plan_pieces(planned.path, stat.st_size, self.piece_bytes))
        layout = PieceLayout(
            self.piece_bytes, stat.st_size, stat.st_mtime, pieces, None, self.fingerprint, planned.path
        )
        logger.info(
            "%s: %d bytes, classified in %s",
            planned.relpath,
            stat.st_size,
            "streamed pieces" if pieces is None else f"{len(pieces)} pieces",
        )
        return layout

    def _add_sha256(self, planned: PlannedFile, layout: PieceLayout) -> None:
        """Store the input's SHA-256 in its layout (about 1 s per GB), if the file is still the version the
        layout describes and still in pieces: --verify-inputs then compares a partly done file's content."""
        try:
            sha256 = file_sha256(planned.path, cancelled=self._closing.is_set)
            stat = os.stat(planned.path)
        except HashCancelled:
            return
        except OSError as exc:  # vanished meanwhile: the next run reports it
            logger.warning("could not hash %s: %s", planned.path, exc)
            return
        if (stat.st_size, stat.st_mtime) != (layout.input_size, layout.input_mtime):
            return
        if piece_files.read_layout(self.output_dir, planned.relpath) is None:  # assembled and removed
            return
        piece_files.write_layout(self.output_dir, planned.relpath, replace(layout, input_sha256=sha256))
        # The assembly writes the file's marker, then removes its pieces: if it did both between the look
        # above and this write, the write brought back a _pieces directory for a finished file.
        if os.path.exists(marker_path(self.output_dir, planned.relpath)):
            shutil.rmtree(piece_files.pieces_dir(self.output_dir, planned.relpath), ignore_errors=True)

    def _stream_job(self, planned: PlannedFile, layout: PieceLayout, done: set[int]) -> PieceJob:
        contiguous = 0
        while contiguous in done:
            contiguous += 1
        skip_lines = skip_rows = 0
        if contiguous:
            (marker,) = piece_files.read_piece_markers(self.output_dir, planned.relpath, [contiguous - 1])
            skip_lines, skip_rows = marker.extra["end_line"], marker.extra["end_row"]
        work = PieceWork(planned.input_file, layout, None, contiguous, skip_lines, skip_rows)
        return PieceJob(planned, work, planned.size)


def _piece_size(planned: PlannedFile, layout: PieceLayout, piece: Any) -> int:
    """A piece's share of the file's bytes (Parquet pieces are row ranges: pro rata)."""
    if format_of(planned.path).pieces_in_rows:
        rows = layout.pieces[-1].stop if layout.pieces else 0
        return planned.size * (piece.stop - piece.start) // max(1, rows)
    return piece.stop - piece.start


def changed_partial_inputs(
    files: Sequence[PlannedFile], output_dir: str, *, verify: bool
) -> list[InputChange]:
    """Files partly done in pieces whose input differs from the version their first piece read (size and
    mtime; content hash with `verify`, which also records a touched but identical file's new mtime)."""
    by_relpath = {f.relpath: f for f in files}
    changes = []
    for relpath in piece_files.files_in_pieces(output_dir):
        planned = by_relpath.get(relpath)
        layout = piece_files.read_layout(output_dir, relpath)
        if planned is None or layout is None:
            continue
        try:
            stat = os.stat(planned.path)
        except FileNotFoundError:
            changes.append(InputChange(relpath, planned.path, VANISHED))
            continue
        if stat.st_size != layout.input_size:
            what = f"size {layout.input_size} -> {stat.st_size} bytes since its first piece"
        elif stat.st_mtime == layout.input_mtime:
            continue
        elif verify and layout.input_sha256:
            if file_sha256(planned.path) == layout.input_sha256:
                piece_files.write_layout(output_dir, relpath, replace(layout, input_mtime=stat.st_mtime))
                continue
            what = "same size, different content (SHA-256) since its first piece"
        else:
            what = f"modified after its first piece (mtime {layout.input_mtime} -> {stat.st_mtime})"
        changes.append(InputChange(relpath, planned.path, what))
    return changes


def remove_finished_pieces(output_dir: str, done: set[str]) -> None:
    """Pieces left by a run killed between a file's completion marker and their removal."""
    for relpath in piece_files.files_in_pieces(output_dir):
        if relpath in done:
            piece_files.remove_pieces(output_dir, relpath)


def partly_done(output_dir: str, planned: set[str]) -> list[dict[str, Any]]:
    """The planned files started in pieces and not finished: pieces done (of how many; None while a
    compressed file's count is unknown) and their documents. A file whose pieces a running run removes while
    they are read (its assembly finished) is left out: it is no longer partly done."""
    found = []
    for relpath in piece_files.files_in_pieces(output_dir):
        layout = piece_files.read_layout(output_dir, relpath)
        if relpath not in planned or layout is None:
            continue
        done = sorted(piece_files.done_piece_indices(output_dir, relpath))
        markers = piece_files.read_piece_markers_if_kept(output_dir, relpath, done)
        if markers is None:  # its pieces were removed since the listing: assembled (done) or forgotten
            continue
        found.append(
            {
                "relpath": relpath,
                "pieces_done": len(done),
                "pieces": None if layout.pieces is None else len(layout.pieces),
                "documents_done": sum(m.rows_in for m in markers),
            }
        )
    return found
