"""Whether a file is cut, and a Parquet file's pieces, go by what a read holds decoded, not by the size on
disk: a compressed JSONL file smaller than a piece on disk but larger decompressed is streamed in pieces,
a Parquet file's row groups are counted uncompressed, and small files are grouped by decoded bytes. The
pieces read back are exactly the whole-file read; files that fit stay whole and get no pieces directory."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from hpc_classify.driver import piece_files
from hpc_classify.driver.grouping import FileQueue
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.pieces import iter_stream_pieces, plan_pieces, read_piece
from hpc_classify.io.readers import read_documents

PIECE_BYTES = 64 << 10


def _jsonl(count: int, start: int = 0) -> bytes:
    """Documents that compress about 20x (text repeated within each document, every one unique)."""
    return b"".join(
        (json.dumps({"id": i, "text": f"document {i}: " + "the same words again " * 40}) + "\n").encode()
        for i in range(start, start + count)
    )


def _zstd_streamed(data: bytes) -> bytes:
    """zstd written as a stream: its frame header declares no content size."""
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


COMPRESS = {
    "gz": gzip.compress,
    "zst": zstandard.compress,  # declares its content size: known from the header alone
    "zst-stream": _zstd_streamed,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    # Two gzip members, the last one tiny: its ISIZE trailer (4 bytes) says nothing of the whole file.
    "gz-members": lambda data: gzip.compress(data[:-100]) + gzip.compress(data[-100:]),
}


def _write(tmp_path, kind: str, data: bytes) -> PlannedFile:
    suffix = kind.split("-")[0]
    path = tmp_path / f"docs-{kind}.jsonl.{suffix}"
    path.write_bytes(COMPRESS[kind](data))
    stat = os.stat(path)
    return PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)


@pytest.mark.parametrize("kind", list(COMPRESS))
def test_a_compressed_file_small_on_disk_but_large_decompressed_is_streamed_in_pieces(tmp_path, kind):
    data = _jsonl(600)  # about 540 KiB decompressed, a tenth of that on disk
    planned = _write(tmp_path, kind, data)
    assert planned.size < PIECE_BYTES < len(data)
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, PIECE_BYTES)
    assert scheduler.needs_pieces(planned)
    [job] = scheduler.expand(planned)
    scheduler.close()
    layout = piece_files.read_layout(out, planned.relpath)
    assert layout.streamed and job.work.piece is None and layout.piece_bytes == PIECE_BYTES

    pieces = list(iter_stream_pieces(planned.path, layout.piece_bytes))
    assert len(pieces) == len(data) // PIECE_BYTES > 1
    whole = read_documents(planned.path)
    joined = pd.concat([p.result.frame for p in pieces])
    assert joined["id"].tolist() == whole.frame["id"].tolist() == list(range(600))
    assert joined["text"].tolist() == whole.frame["text"].tolist()
    assert joined.index.tolist() == whole.frame.index.tolist()
    lines = data.splitlines(keepends=True)
    longest = max(len(line) for line in lines)
    assert all(sum(len(lines[i]) for i in p.result.frame["id"]) < PIECE_BYTES + longest for p in pieces)


@pytest.mark.parametrize("kind", list(COMPRESS))
def test_a_compressed_file_that_fits_a_piece_decompressed_stays_whole_without_a_pieces_directory(
    tmp_path, kind
):
    data = _jsonl(60)
    planned = _write(tmp_path, kind, data)
    out = tmp_path / "out"
    scheduler = PieceScheduler(str(out), PIECE_BYTES)
    assert not scheduler.needs_pieces(planned)
    assert scheduler.content_bytes(planned) == len(data)  # exact: what groups are counted in
    scheduler.close()
    assert not out.exists()


def test_a_corrupt_compressed_file_goes_whole_so_that_its_read_reports_it(tmp_path):
    path = tmp_path / "bad.jsonl.gz"
    path.write_bytes(gzip.compress(_jsonl(600))[:3000])  # truncated
    planned = PlannedFile(str(path), path.name, 3000, os.stat(path).st_mtime)
    assert not PieceScheduler(str(tmp_path / "out"), PIECE_BYTES).needs_pieces(planned)


def test_small_compressed_files_are_grouped_by_their_decompressed_bytes(tmp_path):
    files = []
    for n in range(6):
        path = tmp_path / f"f{n}.jsonl.zst"
        path.write_bytes(zstandard.compress(_jsonl(25, start=100 * n)))  # ~22 KiB, ~1.5 KiB on disk
        files.append(PlannedFile(str(path), path.name, os.path.getsize(path)))
    scheduler = PieceScheduler(str(tmp_path / "out"), PIECE_BYTES)
    assert sum(f.size for f in files) < PIECE_BYTES  # on disk, all six would be one group
    queue = FileQueue(files)
    groups = []
    while queue:
        groups.append(queue.take(PIECE_BYTES, alone=scheduler.needs_pieces, weight=scheduler.content_bytes))
    assert [len(g) for g in groups] == [2, 2, 2]
    assert all(sum(scheduler.content_bytes(f) for f in g) <= PIECE_BYTES for g in groups)


def _parquet(path, rows: int, row_group_size: int) -> PlannedFile:
    texts = [f"document {i}: " + "the same words again " * 40 for i in range(rows)]
    table = pa.table({"id": list(range(rows)), "text": texts})
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd", use_dictionary=False)
    stat = os.stat(path)
    return PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)


def _uncompressed(path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [
        sum(meta.row_group(g).column(c).total_uncompressed_size for c in range(meta.num_columns))
        for g in range(meta.num_row_groups)
    ]


@pytest.mark.parametrize("row_group_size", [50, 600])  # many small row groups; one large one
def test_parquet_is_cut_by_its_row_groups_uncompressed_sizes(tmp_path, row_group_size):
    planned = _parquet(tmp_path / "docs.parquet", 600, row_group_size)
    sizes = _uncompressed(planned.path)
    assert planned.size < PIECE_BYTES < sum(sizes)  # compressed, the whole file fits one piece
    scheduler = PieceScheduler(str(tmp_path / "out"), PIECE_BYTES)
    assert scheduler.needs_pieces(planned)
    scheduler.close()

    pieces = plan_pieces(planned.path, planned.size, PIECE_BYTES)
    assert len(pieces) >= -(-sum(sizes) // PIECE_BYTES) > 1
    per_row = sum(sizes) / 600
    assert all((p.stop - p.start) * per_row <= PIECE_BYTES for p in pieces)
    whole = read_documents(planned.path)
    results = [read_piece(planned.path, p) for p in pieces]
    joined = pd.concat([r.frame for r in results])
    assert joined["id"].tolist() == whole.frame["id"].tolist() == list(range(600))
    assert joined["text"].tolist() == whole.frame["text"].tolist()
    assert joined.index.tolist() == whole.frame.index.tolist()


def test_a_small_parquet_file_stays_whole(tmp_path):
    planned = _parquet(tmp_path / "small.parquet", 40, 50)
    scheduler = PieceScheduler(str(tmp_path / "out"), PIECE_BYTES)
    assert not scheduler.needs_pieces(planned)
    assert scheduler.content_bytes(planned) == sum(_uncompressed(planned.path))


def test_a_layout_cut_by_an_earlier_version_is_kept_whole_never_mixed(tmp_path):
    """A Parquet file an earlier version cut by compressed sizes (here: one piece) keeps that layout on a
    rerun; a compressed file it read whole has no layout and is simply cut now (nothing of it was kept)."""
    planned = _parquet(tmp_path / "docs.parquet", 600, 50)
    out = str(tmp_path / "out")
    stat = os.stat(planned.path)
    old = piece_files.PieceLayout(
        PIECE_BYTES, stat.st_size, stat.st_mtime, tuple(plan_pieces(planned.path, stat.st_size, 10**9))
    )
    assert len(old.pieces) == 1
    piece_files.write_layout(out, planned.relpath, old)
    scheduler = PieceScheduler(out, PIECE_BYTES)
    jobs = scheduler.expand(planned)
    scheduler.close()
    assert [job.work.piece for job in jobs] == list(old.pieces)
    assert piece_files.read_layout(out, planned.relpath).pieces == old.pieces
