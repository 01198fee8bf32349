"""`hpc-classify run --output-format parquet`, whole files and files cut into pieces then assembled: a
Parquet input's columns keep their Arrow types and values (decimal128(10, 2), dictionary<string>, a string
column null in the first pieces or in every row, int32 with nulls, timestamp[ms, UTC], large_string,
string), the prediction columns have their documented types, and a JSONL input's pieces assemble into the
types of its whole-file output (a key null in every row of the first pieces takes the later pieces' type).
The run's two outputs then share one schema, in which an int32 column of one and int64 of the other is int64."""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from driver_support import output_files, run_args, run_cli

from hpc_classify.io.markers import iter_markers
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

ROWS = 240


def typed_parquet(path: Path, texts: list[str]) -> pa.Table:
    rows = len(texts)
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    table = pa.table(
        {
            "id": pa.array(range(rows), pa.int32()),
            "text": pa.array(texts, pa.string()),
            "price": pa.array([decimal.Decimal(i) / 4 for i in range(rows)], pa.decimal128(10, 2)),
            "lang": pa.array([("en", "de", "fr")[i % 3] for i in range(rows)]).dictionary_encode(),
            "late": pa.array([None if i < rows // 2 else f"l{i}" for i in range(rows)], pa.string()),
            "empty": pa.array([None] * rows, pa.string()),
            "count": pa.array([None if i % 5 == 0 else i for i in range(rows)], pa.int32()),
            "seen": pa.array(
                [start + datetime.timedelta(milliseconds=i) for i in range(rows)],
                pa.timestamp("ms", tz="UTC"),
            ),
            "url": pa.array([f"http://x/{i}" for i in range(rows)], pa.large_string()),
        }
    )
    pq.write_table(table, path, row_group_size=rows // 12)
    return pq.read_table(path)


def jsonl_rows(texts: list[str]) -> list[dict]:
    """`maybe`: null in the first half of the rows (the first pieces), text after; `x`: ints, then
    fractions; `n`: ints with nulls."""
    half = len(texts) // 2
    return [
        {
            "id": i,
            "text": text,
            "maybe": None if i < half else f"m{i}",
            "x": i if i < half else i + 0.5,
            "n": None if i % 7 == 0 else i,
        }
        for i, text in enumerate(texts)
    ]


def test_parquet_outputs_keep_input_column_types_whole_and_in_pieces(tmp_path, tiny_domain_model):
    inputs = tmp_path / "in"
    inputs.mkdir()
    texts, _ = synthetic_corpus(ROWS, DOMAIN_LABELS, seed=11)
    source = typed_parquet(inputs / "typed.parquet", texts)
    records = jsonl_rows(texts)
    (inputs / "keys.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    piece_bytes = min(p.stat().st_size for p in inputs.iterdir()) // 6
    common = ("--output-format", "parquet", "--prob-column", "domain_prob")

    runs = {}
    for name, pieces in (("pieced", str(piece_bytes)), ("whole", "0")):
        result = run_cli(
            run_args(inputs, tmp_path / name, tiny_domain_model, *common, "--piece-bytes", pieces)
        )
        assert result.returncode == 0, result.stderr[-3000:]
        runs[name] = {rel: pq.read_table(path) for rel, path in output_files(tmp_path / name).items()}
    pieces_of = {
        Path(m.input_path).name: len(m.extra.get("pieces", []))
        for m in iter_markers(str(tmp_path / "pieced"))
    }
    assert pieces_of["typed.parquet"] >= 4 and pieces_of["keys.jsonl"] >= 4, pieces_of

    for name, outputs in runs.items():
        typed = outputs["typed.parquet"]
        for field in source.schema:
            # The run's outputs share one schema: keys.jsonl's int64 ids widen typed.parquet's int32 ones.
            kept = pa.int64() if field.name == "id" else field.type
            assert typed.schema.field(field.name).type == kept, (name, field.name)
            assert typed.column(field.name).to_pylist() == source.column(field.name).to_pylist(), (
                name,
                field,
            )
        assert outputs["keys.parquet"].schema.equals(typed.schema, check_metadata=False), name
        for table in outputs.values():
            assert table.schema.field("domain_pred").type == pa.string(), name
            assert table.schema.field("domain_prob").type == pa.list_(pa.float64()), name

    pieced, whole = runs["pieced"]["keys.parquet"], runs["whole"]["keys.parquet"]
    assert pieced.schema.remove_metadata().equals(whole.schema.remove_metadata())
    expected = {
        "id": pa.int64(),
        "text": pa.string(),
        "maybe": pa.string(),
        "x": pa.float64(),
        "n": pa.int64(),
    }
    assert {name: pieced.schema.field(name).type for name in expected} == expected
    assert pieced.select(list(expected)).to_pylist() == [{k: r[k] for k in expected} for r in records]
    assert pieced.column("domain_pred").to_pylist() == whole.column("domain_pred").to_pylist()
