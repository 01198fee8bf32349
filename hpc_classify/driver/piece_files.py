"""The files of a file in pieces, all under `<output>/_pieces/<relpath>.pieces/` (one owner of that layout).

    layout                how the file is cut, for which settings (fingerprint) and input (JSON): fixed
                          when its first piece starts, kept until it is done
    000003.piece          piece 3's output, in the run's output format and compressed as the file's final
                          output (the run settings say which, not this name)
    _000003.quarantine    its bad rows (JSON Lines), when it has some
    000003.done           its marker (JSON), written last (atomically): the piece is done

A piece's output is written atomically before its marker, so a marker always stands for a complete
piece. When every piece is done, the file's output is assembled from them (driver/assembly.py) and its
completion marker written; only then is this directory removed. The "_" prefix keeps it out of input
discovery, the completion-marker scan and pyarrow/pandas readers of the output directory; no name under it
ends in a document suffix, so that a recursive glob (`OUT/**/*.jsonl`) of an unfinished run's directory
matches its finished outputs only, never a piece nor a pieces directory. Older versions wrote
`_pieces/<relpath>/` with `000003.<output suffix>` pieces, `000003.done.json` and `layout.json`: such a
directory is only found to be removed (`scan_pieces`; the file is classified again).

A directory of the input named like a pieces directory (`X.jsonl.pieces/`, beside an input `X.jsonl`) would put
the pieces of its files inside `X.jsonl`'s pieces directory, which `X.jsonl`'s assembly removes: a directory
component ending in `.pieces` (and any number of `+`) takes one more `+` under `_pieces/`
(`_pieces/X.jsonl.pieces+/a.jsonl.pieces/`), so that a name ending in `.pieces` is always one file's pieces
directory, and an ordinary corpus's layout is unchanged. Versions before that put them inside it: found by
`scan_pieces` too (a directory within a pieces directory), and removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import CompletionMarker, read_marker
from hpc_classify.io.pieces import Piece
from hpc_classify.io.skipped_names import QUARANTINE_SUFFIX
from hpc_classify.io.writers import is_temp_file, write_json_atomically

PIECES_DIRNAME = "_pieces"
PIECES_DIR_SUFFIX = ".pieces"  # on the relpath: `_pieces/big.jsonl/` matched `OUT/**/*.jsonl`
LAYOUT_FILE = "layout"
PIECE_OUTPUT_SUFFIX = ".piece"
PIECE_MARKER_SUFFIX = ".done"
_ESCAPED = re.compile(r"\.pieces\+*\Z")  # directory names that take one more "+" under _pieces/


@dataclass(frozen=True)
class PieceLayout:
    """How one input file is cut. `pieces` is None for a compressed file (its pieces are found while it
    is streamed, each about `piece_bytes` decompressed). `input_size`/`input_mtime`: the input as it was
    when the first piece started; a piece or resume that sees another input refuses to mix versions.
    `fingerprint` and `input_path`: the run settings and the input the pieces are made for; a run of other
    settings or another input does not use them (driver/foreign_pieces.py). None in a layout of an older
    version, which recorded neither."""

    piece_bytes: int
    input_size: int
    input_mtime: float
    pieces: tuple[Piece, ...] | None
    input_sha256: str | None = None
    fingerprint: str | None = None
    input_path: str | None = None

    @property
    def streamed(self) -> bool:
        return self.pieces is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "piece_bytes": self.piece_bytes,
            "input_size": self.input_size,
            "input_mtime": self.input_mtime,
            "pieces": None if self.pieces is None else [p.to_list() for p in self.pieces],
            "input_sha256": self.input_sha256,
            "fingerprint": self.fingerprint,
            "input_path": self.input_path,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PieceLayout:
        pieces = data["pieces"]
        return cls(
            piece_bytes=int(data["piece_bytes"]),
            input_size=int(data["input_size"]),
            input_mtime=float(data["input_mtime"]),
            pieces=None if pieces is None else tuple(Piece(*map(int, p)) for p in pieces),
            input_sha256=data.get("input_sha256"),
            fingerprint=data.get("fingerprint"),
            input_path=data.get("input_path"),
        )


def pieces_dir(output_dir: str, relpath: str) -> str:
    *directories, name = relpath.split("/")
    escaped = [d + "+" if _ESCAPED.search(d) else d for d in directories]
    return os.path.join(output_dir, PIECES_DIRNAME, *escaped, name + PIECES_DIR_SUFFIX)


def _relpath_of(parts: list[str]) -> str:
    """The relpath whose pieces directory is `_pieces/<parts>` (the inverse of `pieces_dir`)."""
    directories = [d[:-1] if d.endswith("+") and _ESCAPED.search(d) else d for d in parts[:-1]]
    return "/".join([*directories, parts[-1][: -len(PIECES_DIR_SUFFIX)]])


def _is_pieces_dir(parts: list[str]) -> bool:
    """Whether `_pieces/<parts>` is where this version puts a file's pieces (no directory above it ends in
    `.pieces`: that is one of a version before the escape, which put pieces directories inside another)."""
    return (
        bool(parts)
        and parts[-1].endswith(PIECES_DIR_SUFFIX)
        and not any(d.endswith(PIECES_DIR_SUFFIX) for d in parts[:-1])
    )


def layout_path(output_dir: str, relpath: str) -> str:
    return os.path.join(pieces_dir(output_dir, relpath), LAYOUT_FILE)


def read_layout(output_dir: str, relpath: str) -> PieceLayout | None:
    """The file's stored layout, or None when none of its pieces has started."""
    try:
        with open(layout_path(output_dir, relpath), encoding="utf-8") as f:
            return PieceLayout.from_dict(json.load(f))
    except FileNotFoundError:
        return None


def write_layout(output_dir: str, relpath: str, layout: PieceLayout) -> None:
    write_json_atomically(layout_path(output_dir, relpath), layout.to_dict())


def piece_stem(index: int) -> str:
    return f"{index:06d}"


def piece_output_path(output_dir: str, relpath: str, index: int) -> str:
    """Piece `index`'s output. Its name says no format: it is written as the file's final output's name says
    (`piece_task.piece_destination`) and read as the run's output format (`assembly.assemble_file`)."""
    return os.path.join(pieces_dir(output_dir, relpath), piece_stem(index) + PIECE_OUTPUT_SUFFIX)


def piece_quarantine_path(output_dir: str, relpath: str, index: int) -> str:
    return os.path.join(pieces_dir(output_dir, relpath), f"_{piece_stem(index)}{QUARANTINE_SUFFIX}")


def piece_marker_path(output_dir: str, relpath: str, index: int) -> str:
    return os.path.join(pieces_dir(output_dir, relpath), piece_stem(index) + PIECE_MARKER_SUFFIX)


def done_piece_indices(output_dir: str, relpath: str) -> set[int]:
    """Indices of the file's pieces with a marker (a directory listing: no marker is parsed). For reports
    and a streamed file's assembly, which waits for what it does not see yet; deciding whether to classify
    a piece takes `marked_pieces`."""
    try:
        with os.scandir(pieces_dir(output_dir, relpath)) as entries:
            names = [e.name for e in entries]
    except FileNotFoundError:
        return set()
    return {
        int(name[: -len(PIECE_MARKER_SUFFIX)])
        for name in names
        if name.endswith(PIECE_MARKER_SUFFIX) and not is_temp_file(name)
    }


def marked_pieces(output_dir: str, relpath: str, layout: PieceLayout, first: int = 0) -> set[int]:
    """Indices of the file's pieces from `first` on with a marker, each marker looked up by its own name (a
    stat), never by listing the directory: an NFS client may serve a cached listing for up to a minute, which
    lacks a marker a worker on another node just wrote, and the done piece would be classified again. A
    planned layout names its pieces; a streamed file's are written in order, so they are looked up from
    `first` until one is missing (never a gap: a stream resumes after the contiguous ones)."""
    if layout.pieces is not None:
        indices = [p.index for p in layout.pieces if p.index >= first]
        return {i for i in indices if piece_marked(output_dir, relpath, i)}
    done: set[int] = set()
    while piece_marked(output_dir, relpath, first + len(done)):
        done.add(first + len(done))
    return done


def piece_marked(output_dir: str, relpath: str, index: int) -> bool:
    """Whether piece `index` is done: its marker looked up by name (see `marked_pieces`)."""
    return os.path.exists(piece_marker_path(output_dir, relpath, index))


def read_piece_markers(output_dir: str, relpath: str, indices: Sequence[int]) -> list[CompletionMarker]:
    """The markers of the given pieces, in that order."""
    return [read_marker(piece_marker_path(output_dir, relpath, index)) for index in indices]


def read_piece_markers_if_kept(
    output_dir: str, relpath: str, indices: Sequence[int]
) -> list[CompletionMarker] | None:
    """As `read_piece_markers` for a reader beside a running run (`status`): None when one of them is gone
    since the listing, because the run removed the file's pieces meanwhile (its assembly finished: the file
    has its completion marker now; or a redo forgot them). A marker that is there but unreadable still
    raises."""
    try:
        return read_piece_markers(output_dir, relpath, indices)
    except InputFileError:
        if all(os.path.exists(piece_marker_path(output_dir, relpath, i)) for i in indices):
            raise
        return None


@dataclass(frozen=True)
class PiecesScan:
    """What `_pieces/` holds. `laid`/`unlaid`: relpaths of the files whose pieces directory of this version
    has a layout / none (what a kill inside `remove_pieces`, which removes the layout first, leaves: nothing
    in it counts, but for a done file nothing else would ever remove it). `legacy`: the pieces directories an
    older version left, relative to `_pieces/` ("/"-separated; `legacy_relpath` says whose pieces each held).
    Each sorted."""

    laid: list[str]
    unlaid: list[str]
    legacy: list[str]


def scan_pieces(output_dir: str) -> PiecesScan:
    """One walk of `_pieces/`, which lists each directory once (on a parallel file system a listing is
    metadata requests: a pieces directory may hold thousands of files). This version's pieces directories
    hold files only; any other directory holding files is an older version's: `_pieces/<relpath>/`, whose
    pieces read as outputs, or one within a pieces directory, before the escape of `.pieces` names. A
    `.pieces` directory holding directories only is no file's: the parent of such older ones (an older
    version's `_pieces/X.pieces/<relpath>/`, or its `X.jsonl.pieces/` of nested ones)."""
    root = os.path.join(output_dir, PIECES_DIRNAME)
    laid, unlaid, legacy = [], [], []
    for dirpath, dirnames, filenames in os.walk(root):
        parts = _parts(root, dirpath)
        if _is_pieces_dir(parts) and (filenames or not dirnames):
            (laid if LAYOUT_FILE in filenames else unlaid).append(_relpath_of(parts))
        elif filenames and parts:
            legacy.append("/".join(parts))
            dirnames.clear()  # all of it goes
    return PiecesScan(sorted(laid), sorted(unlaid), sorted(legacy))


def files_in_pieces(output_dir: str) -> list[str]:
    """Relpaths of the files that have a pieces directory (a layout), sorted."""
    return scan_pieces(output_dir).laid


def legacy_relpath(directory: str) -> str:
    """The relpath of the file whose pieces the older version's `directory` (`PiecesScan.legacy`) held."""
    return directory.removesuffix(PIECES_DIR_SUFFIX)


def _parts(root: str, dirpath: str) -> list[str]:
    relative = os.path.relpath(dirpath, root)
    return [] if relative == os.curdir else relative.split(os.sep)


def remove_pieces(output_dir: str, relpath: str) -> None:
    """Remove the file's pieces directory, then any parent left empty (up to `_pieces/`). The layout goes
    first: a removal cut short (the worker killed) leaves no layout, so the file's task, run again, finds
    its marker and counts it as assembled, instead of finding pieces missing and failing the file."""
    directory = pieces_dir(output_dir, relpath)
    with contextlib.suppress(FileNotFoundError):
        os.remove(os.path.join(directory, LAYOUT_FILE))
    _remove_with_empty_parents(output_dir, directory)


def remove_legacy_pieces(output_dir: str, directory: str) -> None:
    """Remove a pieces directory of an older version (`PiecesScan.legacy`), then any parent left empty."""
    _remove_with_empty_parents(output_dir, os.path.join(output_dir, PIECES_DIRNAME, *directory.split("/")))


def _remove_with_empty_parents(output_dir: str, directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    root = os.path.join(output_dir, PIECES_DIRNAME)
    parent = os.path.dirname(directory)
    while parent.startswith(root):
        try:
            os.rmdir(parent)
        except OSError:
            break
        parent = os.path.dirname(parent)
