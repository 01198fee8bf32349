"""One piece of a large file, start to finish, on a worker: a plain function, no Dask (as driver/task.py
is for a whole file). A compressed file's pieces are classified by one task that streams it, checkpointing
after each piece. Each piece's output and quarantine are written atomically, its marker last
(driver/piece_files.py has the layout); the file's own output comes later, assembled from the pieces."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from hpc_classify.driver import piece_files
from hpc_classify.driver.piece_files import PieceLayout
from hpc_classify.driver.task import Destination, FileSettings, InputRead, write_classified
from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import InputFile, output_relpath
from hpc_classify.io.markers import CompletionMarker
from hpc_classify.io.pieces import Piece, iter_stream_pieces, read_piece
from hpc_classify.io.readers import ReadResult


@dataclass(frozen=True)
class PieceWork:
    """What a piece task does: piece `piece` of a planned layout, or (piece None) stream the compressed
    file from piece `first_index` on, which starts after `skip_lines` lines (`skip_rows` non-blank)."""

    input_file: InputFile
    layout: PieceLayout
    piece: Piece | None = None
    first_index: int = 0
    skip_lines: int = 0
    skip_rows: int = 0


def piece_destination(settings: FileSettings, relpath: str, index: int) -> Destination:
    out = settings.output_dir
    return Destination(
        output_path=piece_files.piece_output_path(out, relpath, index),
        quarantine_path=piece_files.piece_quarantine_path(out, relpath, index),
        marker_path=piece_files.piece_marker_path(out, relpath, index),
        # A piece's name says no format (no glob of the output directory may match it): compressed as
        # the file's own output will be, so that the pieces concatenate into it.
        output_named_as=output_relpath(relpath, settings.output_format),
    )


def classify_pieces(
    work: PieceWork, classifiers: Sequence[Any], settings: FileSettings
) -> Iterator[CompletionMarker]:
    """Classify the work's piece(s), yielding each piece's marker once it is written."""
    from hpc_classify.classifiers.combine import predict_together, text_fields

    input_file = work.input_file
    fields = text_fields(classifiers)  # every classifier's: a row bad in any is bad for all
    for index, started, result, extra in _read_pieces(work, fields, settings.on_bad_row):
        stat = check_unchanged(input_file.path, work.layout)
        read = InputRead(input_file, started, stat, None, result)
        predicted = predict_together(classifiers, result.frame, source=f"{input_file.path} (piece {index})")
        destination = piece_destination(settings, input_file.relpath, index)
        yield write_classified(read, predicted, classifiers, settings, destination, {"piece": index, **extra})
        del result, read, predicted  # this piece's rows: not alive while the next piece is read


def _read_pieces(
    work: PieceWork, text_field: Sequence[str], on_bad_row: str
) -> Iterator[tuple[int, float, ReadResult, dict]]:
    path = work.input_file.path
    if work.piece is not None:
        started = time.time()
        result = read_piece(path, work.piece, text_field=text_field, on_bad_row=on_bad_row)
        yield work.piece.index, started, result, {}
        return
    started = time.time()
    for piece in iter_stream_pieces(
        path,
        work.layout.piece_bytes,
        text_field=text_field,
        on_bad_row=on_bad_row,
        first_index=work.first_index,
        skip_lines=work.skip_lines,
        skip_rows=work.skip_rows,
    ):
        extra = {"end_line": piece.end_line, "end_row": piece.end_row, "last": piece.last}
        yield piece.index, started, piece.result, extra
        del piece  # its rows, while the stream reads the next piece
        started = time.time()


def check_unchanged(path: str, layout: PieceLayout) -> os.stat_result:
    """The input's stat, or InputFileError when it differs from the version the file's first piece read:
    pieces of two versions of a file must never be assembled into one output."""
    stat = os.stat(path)
    if stat.st_size != layout.input_size or stat.st_mtime != layout.input_mtime:
        raise InputFileError(
            path,
            f"changed while it was classified in pieces (size {layout.input_size} -> {stat.st_size} bytes, "
            f"mtime {layout.input_mtime} -> {stat.st_mtime})",
            hint="rerun with --on-changed-input redo to classify it again from its first piece",
        )
    return stat
