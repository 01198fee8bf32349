"""A run cuts files by what they hold decoded: a .jsonl.gz, a .jsonl.zst (no content size in its header)
and a zstd Parquet file, each smaller than a piece on disk but several pieces decoded, are classified in
pieces into exactly their documents, in order; small compressed files that fit a piece decoded stay whole
(no pieces directory, one task for several of them)."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from driver_support import output_files, run_args, run_cli, summary, temp_files
from test_pieces import read_output

from hpc_classify.io.markers import iter_markers
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

PIECE_BYTES = 48 << 10


def _documents(name: str, count: int, seed: int) -> tuple[list[str], list[str]]:
    texts, _ = synthetic_corpus(count, DOMAIN_LABELS, seed=seed)
    return [f"{name}-{i}" for i in range(count)], [" ".join([t] * 6) for t in texts]  # compress ~10x


def _jsonl(ids: list[str], texts: list[str]) -> bytes:
    return "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in zip(ids, texts, strict=True)).encode()


def _zstd_streamed(data: bytes) -> bytes:
    out = io.BytesIO()
    with zstandard.ZstdCompressor().stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


def test_files_small_on_disk_but_large_decoded_are_cut_and_small_ones_stay_whole(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    expected: dict[str, list[str]] = {}
    decoded: dict[str, int] = {}
    for name, write in (("big-gz", gzip.compress), ("big-zst", _zstd_streamed)):
        ids, texts = _documents(name, 300, seed=len(expected))
        data = _jsonl(ids, texts)
        path = inputs / f"{name}.jsonl.{'gz' if name.endswith('gz') else 'zst'}"
        path.write_bytes(write(data))
        expected[path.name], decoded[path.name] = ids, len(data)
    ids, texts = _documents("big-parquet", 300, seed=7)
    path = inputs / "big-parquet.parquet"
    table = pa.table({"id": ids, "text": texts})
    pq.write_table(table, path, row_group_size=100, compression="zstd", use_dictionary=False)
    meta = pq.ParquetFile(path).metadata
    expected[path.name] = ids
    decoded[path.name] = sum(
        meta.row_group(g).column(c).total_uncompressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    )
    for n in range(3):
        ids, texts = _documents(f"small-{n}", 4, seed=10 + n)
        path = inputs / f"small-{n}.jsonl.zst"
        path.write_bytes(zstandard.compress(_jsonl(ids, texts)))
        expected[path.name] = ids
    for name in ("big-gz.jsonl.gz", "big-zst.jsonl.zst", "big-parquet.parquet"):
        assert (inputs / name).stat().st_size < PIECE_BYTES < decoded[name] // 3, name

    result = run_cli(run_args(inputs, output, tiny_domain_model, "--piece-bytes", str(PIECE_BYTES)))
    assert result.returncode == 0, result.stderr[-3000:]

    outputs = output_files(output)
    assert len(outputs) == len(expected)
    for relpath, path in outputs.items():
        stem = relpath.split(".", 1)[0]
        [name] = [n for n in expected if n.split(".", 1)[0] == stem]
        assert read_output(path)["id"].tolist() == expected[name], name  # every document once, in order
    markers = {Path(m.input_path).name: m for m in iter_markers(str(output))}
    for name, ids in expected.items():
        pieces = markers[name].extra.get("pieces")
        if name.startswith("big"):
            assert len(pieces) >= 3, name
            assert sum(p["rows_in"] for p in pieces) == markers[name].rows_in == len(ids)
        else:
            assert pieces is None and markers[name].rows_in == len(ids), name
    s = summary(output)
    assert s["documents_in"] == sum(len(ids) for ids in expected.values())
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []
