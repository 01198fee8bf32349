"""A run whose compressed shards are measured ahead of the dispatch (driver/content_sizes.py) classifies
every document exactly once: small .gz/.zst/.bz2/.xz shards and a small Parquet file grouped by their
decoded bytes, a .gz shard small on disk but several pieces decoded cut, and a truncated .gz shard, measured
ahead like the others, fails alone with its read's error while the rest are unaffected."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from driver_support import output_files, read_jsonl, run_args, run_cli, summary, temp_files
from test_pieces import read_output

from hpc_classify.io.markers import iter_markers
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

PIECE_BYTES = 48 << 10
COMPRESS = {"gz": gzip.compress, "zst": zstandard.compress, "bz2": bz2.compress, "xz": lzma.compress}


def _documents(name: str, count: int, seed: int) -> tuple[list[str], bytes]:
    texts, _ = synthetic_corpus(count, DOMAIN_LABELS, seed=seed)
    ids = [f"{name}-{i}" for i in range(count)]
    lines = (json.dumps({"id": i, "text": " ".join([t] * 6)}) + "\n" for i, t in zip(ids, texts, strict=True))
    return ids, "".join(lines).encode()


def test_shards_measured_ahead_are_classified_exactly_once(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    expected: dict[str, list[str]] = {}
    for n in range(8):
        suffix = list(COMPRESS)[n % len(COMPRESS)]
        ids, data = _documents(f"small-{n}", 5 + n, seed=n)
        (inputs / f"small-{n}.jsonl.{suffix}").write_bytes(COMPRESS[suffix](data))
        expected[f"small-{n}.jsonl.{suffix}"] = ids
    ids, data = _documents("big", 300, seed=20)
    (inputs / "big.jsonl.gz").write_bytes(gzip.compress(data))
    expected["big.jsonl.gz"] = ids
    assert (inputs / "big.jsonl.gz").stat().st_size < PIECE_BYTES < len(data) // 3
    texts, _ = synthetic_corpus(12, DOMAIN_LABELS, seed=30)
    ids = [f"table-{i}" for i in range(12)]
    pq.write_table(pa.table({"id": ids, "text": texts}), inputs / "table.parquet", compression="zstd")
    expected["table.parquet"] = ids
    _, data = _documents("bad", 300, seed=40)
    (inputs / "bad.jsonl.gz").write_bytes(gzip.compress(data)[:2000])  # truncated

    result = run_cli(run_args(inputs, output, tiny_domain_model, "--piece-bytes", str(PIECE_BYTES)))

    assert result.returncode == 1, result.stderr[-3000:]
    assert [f["relpath"] for f in read_jsonl(output / "_failures.ndjson")] == ["bad.jsonl.gz"]
    by_stem = {name.split(".", 1)[0]: ids for name, ids in expected.items()}
    outputs = {relpath.split(".", 1)[0]: path for relpath, path in output_files(output).items()}
    assert sorted(outputs) == sorted(by_stem)  # a Parquet input's output is JSONL
    for stem, path in outputs.items():
        assert read_output(path)["id"].tolist() == by_stem[stem], stem  # every document once, in order
    markers = {Path(m.input_path).name: m for m in iter_markers(str(output))}
    assert sorted(markers) == sorted(expected)
    assert len(markers["big.jsonl.gz"].extra["pieces"]) >= 3
    assert all(markers[name].extra.get("pieces") is None for name in expected if name != "big.jsonl.gz")
    s = summary(output)
    assert s["documents_in"] == sum(len(ids) for ids in expected.values())
    assert (s["files_processed"], s["files_failed"]) == (len(expected), 1)
    assert not (output / "_pieces").exists()
    assert temp_files(output) == []
