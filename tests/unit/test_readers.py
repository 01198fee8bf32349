"""read_documents / read_frame: exact rows, order, bad rows under both policies, compression, corrupt files."""

from __future__ import annotations

import gzip
import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.readers import BAD_ROW_HINT, BadRow, read_documents, read_frame

ROWS = [
    {"id": 1, "text": "first", "meta": {"lang": "en"}},
    {"id": 2, "text": "zweite \u00fc\u00df \u4e2d\u6587"},
    {"id": 3, "text": "", "extra": [1, 2]},
]


def _jsonl_bytes(rows) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")


def _write(path, data: bytes):
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    elif str(path).endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize("name", ["docs.jsonl", "docs.jsonl.gz", "docs.jsonl.zst", "docs.json"])
def test_reads_rows_columns_and_order_exactly(tmp_path, name):
    result = read_documents(_write(tmp_path / name, _jsonl_bytes(ROWS)))
    assert result.bad_rows == []
    assert list(result.frame.columns) == ["id", "text", "meta", "extra"]
    assert result.frame["text"].tolist() == [r["text"] for r in ROWS]
    assert result.frame["id"].tolist() == [1, 2, 3]
    assert result.frame["meta"].iloc[0] == {"lang": "en"}
    assert result.frame["extra"].iloc[2] == [1, 2]


def test_zstd_multiple_frames_read_in_full(tmp_path):
    cctx = zstandard.ZstdCompressor()
    data = cctx.compress(_jsonl_bytes(ROWS[:2])) + cctx.compress(_jsonl_bytes(ROWS[2:]))
    path = tmp_path / "multi.jsonl.zst"
    path.write_bytes(data)
    assert read_documents(str(path)).frame["id"].tolist() == [1, 2, 3]


BAD_LINES = [
    b'{"text": "ok 1"}\n',  # 1
    b"   \n",  # 2 blank: ignored, not bad
    b'{"text": "bad \xff byte"}\n',  # 3 invalid UTF-8
    b'{"text": "unterminated\n',  # 4 invalid JSON
    b'["not", "an", "object"]\n',  # 5
    b'{"body": "no text"}\n',  # 6
    b'{"text": null}\n',  # 7
    b'{"text": 42}\n',  # 8
    b'{"text": "ok 2", "n": 1}\n',  # 9
    b"\n",  # 10 blank
    b'{"text": ["a"]}',  # 11 no final newline
]


def test_skip_collects_every_kind_of_bad_row_with_exact_lines(tmp_path):
    result = read_documents(_write(tmp_path / "bad.jsonl", b"".join(BAD_LINES)), on_bad_row="skip")
    assert result.frame["text"].tolist() == ["ok 1", "ok 2"]
    assert list(result.frame.columns) == ["text", "n"]
    assert [b.line for b in result.bad_rows] == [3, 4, 5, 6, 7, 8, 11]
    reasons = [b.reason for b in result.bad_rows]
    assert reasons[0] == "invalid UTF-8 (byte 14 of the line)"
    assert reasons[1].startswith("invalid JSON (")
    assert reasons[2:] == [
        "not a JSON object (a JSON array)",
        "missing text field 'text'",
        "text field 'text' is null",
        "text field 'text' is a JSON number, not a string",
        "text field 'text' is a JSON array, not a string",
    ]
    # raw keeps the line (invalid bytes escaped, newline stripped) so the quarantine file loses nothing.
    assert result.bad_rows[0] == BadRow(3, reasons[0], '{"text": "bad \\xff byte"}')
    assert result.bad_rows[-1].raw == '{"text": ["a"]}'


def test_an_escaped_lone_surrogate_is_a_bad_row_not_a_failed_file(tmp_path):
    """`\\ud83d` alone (an emoji cut in half) is valid JSON but no text: pandas and the writers could not
    encode it, and the whole file failed every attempt, `--on-bad-row skip` or not. A whole pair, or an
    escaped backslash before `ud83d`, is fine."""
    lines = [
        b'{"text": "ok"}\n',
        b'{"text": "emoji cut \\ud83d here"}\n',
        b'{"text": "a pair \\ud83d\\ude00", "note": "\\\\ud83d is text"}\n',
        b'{"text": "ok", "meta": {"k": "\\uDE00"}}\n',
    ]
    path = _write(tmp_path / "halves.jsonl", b"".join(lines))
    result = read_documents(path, on_bad_row="skip")
    assert result.frame["text"].tolist() == ["ok", "a pair \U0001f600"]
    assert result.frame["note"].tolist()[1] == "\\ud83d is text"
    reason = "invalid Unicode: an escaped lone surrogate (half of a character, as \\ud83d)"
    assert [(b.line, b.reason) for b in result.bad_rows] == [(2, reason), (4, reason)]
    with pytest.raises(InputFileError, match="halves.jsonl:2: invalid Unicode"):
        read_documents(path)


@pytest.mark.parametrize(
    ("lines", "line", "reason"),
    [
        (BAD_LINES[:3], 3, "invalid UTF-8"),
        ([BAD_LINES[0], BAD_LINES[3]], 2, "invalid JSON"),
        ([BAD_LINES[0], BAD_LINES[1], BAD_LINES[4]], 3, "not a JSON object"),
        ([BAD_LINES[5]], 1, "missing text field 'text'"),
        ([BAD_LINES[6]], 1, "text field 'text' is null"),
        ([BAD_LINES[7]], 1, "text field 'text' is a JSON number"),
    ],
)
def test_error_policy_names_file_line_reason_and_remedy(tmp_path, lines, line, reason):
    path = _write(tmp_path / "bad.jsonl.gz", b"".join(lines))
    with pytest.raises(InputFileError) as info:
        read_documents(path)
    err = info.value
    assert (err.path, err.line, err.hint) == (path, line, BAD_ROW_HINT)
    assert str(err).startswith(f"{path}:{line}: {reason}")
    assert "--on-bad-row skip" in str(err)


def test_custom_text_field_and_columns(tmp_path):
    rows = [{"a": 1, "content": "x", "b": 2}, {"a": 3, "content": "y", "b": 4}]
    path = _write(tmp_path / "c.jsonl", _jsonl_bytes(rows))
    frame = read_documents(path, text_field="content", columns=["b"]).frame
    assert list(frame.columns) == ["b", "content"]
    assert frame.to_dict("records") == [{"b": 2, "content": "x"}, {"b": 4, "content": "y"}]
    with pytest.raises(InputFileError, match="missing text field 'text'"):
        read_documents(path)


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.jsonl.gz", "empty.jsonl.zst"])
def test_empty_file_gives_zero_rows_with_text_column(tmp_path, name):
    result = read_documents(_write(tmp_path / name, b""))
    assert len(result.frame) == 0 and list(result.frame.columns) == ["text"] and result.bad_rows == []
    assert len(read_documents(_write(tmp_path / ("blank-" + name), b"\n \n")).frame) == 0


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(InputFileError, match="no such file") as info:
        read_documents(str(tmp_path / "missing.jsonl"))
    assert info.value.hint
    with pytest.raises(InputFileError, match="is a directory"):
        read_documents(str(tmp_path))


def test_ten_megabyte_document(tmp_path):
    big = "word " * (2 * 1024 * 1024)  # 10 MiB
    rows = [{"text": "small"}, {"text": big}, {"text": "after"}]
    result = read_documents(_write(tmp_path / "big.jsonl.zst", _jsonl_bytes(rows)))
    assert [len(t) for t in result.frame["text"]] == [5, len(big), 5]


_ZSTD_FRAME = zstandard.ZstdCompressor().compress(_jsonl_bytes(ROWS))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("trunc.jsonl.gz", gzip.compress(_jsonl_bytes(ROWS))[:-12]),
        ("garbage.jsonl.gz", b"this is not gzip at all\n"),
        ("garbage.jsonl.zst", b"this is not zstd at all\n"),
        # zstandard's own stream reader read these as shorter valid files: the rows after the cut lost
        ("trunc.jsonl.zst", zstandard.ZstdCompressor().compress(_jsonl_bytes(ROWS))[:-12]),
        ("trunc-frame2.jsonl.zst", (_ZSTD_FRAME + _ZSTD_FRAME)[: len(_ZSTD_FRAME) + 9]),
        ("garbage.parquet", b"PAR1 nope"),
    ],
)
@pytest.mark.parametrize("on_bad_row", ["error", "skip"])
def test_corrupt_files_raise_input_file_error(tmp_path, name, data, on_bad_row):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputFileError, match="cannot read the file as") as info:
        read_documents(str(path), on_bad_row=on_bad_row)
    assert info.value.path == str(path) and info.value.hint


def test_parquet_checks_rows_by_number(tmp_path):
    path = str(tmp_path / "p.parquet")
    table = pa.table({"id": [1, 2, 3, 4], "text": ["a", None, "c", None]})
    pq.write_table(table, path)
    with pytest.raises(InputFileError) as info:
        read_documents(path)
    assert info.value.line == 2 and "text field 'text' is null" in str(info.value)
    result = read_documents(path, on_bad_row="skip")
    assert result.frame.to_dict("records") == [{"id": 1, "text": "a"}, {"id": 3, "text": "c"}]
    assert [(b.line, b.reason, json.loads(b.raw)) for b in result.bad_rows] == [
        (2, "text field 'text' is null", {"id": 2, "text": None}),
        (4, "text field 'text' is null", {"id": 4, "text": None}),
    ]


def test_parquet_non_string_or_missing_text_column(tmp_path):
    path = str(tmp_path / "n.parquet")
    pq.write_table(pa.table({"text": [1, 2]}), path)
    with pytest.raises(InputFileError, match="text field 'text' has the Arrow type int64, not string"):
        read_documents(path, on_bad_row="skip")  # the whole file: test_file_head.py
    with pytest.raises(InputFileError, match="has no text column 'body'"):
        read_documents(path, text_field="body")


def test_parquet_round_trip_keeps_columns_and_order(tmp_path):
    path = str(tmp_path / "ok.parquet")
    frame = pd.DataFrame({"z": [3, 2, 1], "text": ["c", "b", "a"]})
    frame.to_parquet(path, index=False)
    assert read_documents(path).frame.to_dict("records") == frame.to_dict("records")
    assert list(read_documents(path).frame.columns) == ["z", "text"]


def test_a_parquet_files_named_index_is_kept_as_a_column_whole_and_in_pieces(tmp_path):
    """pandas stores `set_index("doc_id")` as a column that pyarrow turns back into the index: it was lost
    (the output had text and predictions only). An unnamed index (a filtered frame's labels) is not data."""
    from hpc_classify.io.pieces import plan_pieces, read_piece

    path = str(tmp_path / "indexed.parquet")
    source = pd.DataFrame({"doc_id": [f"d{i}" for i in range(50)], "text": [f"t{i}" for i in range(50)]})
    source.set_index("doc_id").to_parquet(path, row_group_size=7)
    expected = source.to_dict("records")
    assert read_documents(path).frame.to_dict("records") == expected
    pieces = plan_pieces(path, 0, 1)  # the smallest pieces: inside row groups too
    assert len(pieces) > 8
    read = pd.concat([read_piece(path, piece).frame for piece in pieces])
    assert read.to_dict("records") == expected and read.index.tolist() == list(range(50))
    filtered = str(tmp_path / "filtered.parquet")
    source[source.index % 2 == 0].to_parquet(filtered)  # stored as __index_level_0__
    assert read_documents(filtered).frame.to_dict("records") == expected[::2]


def test_dask_s_unnamed_index_is_not_a_column_whole_in_pieces_or_as_a_dataset(tmp_path):
    """Dask's to_parquet stores an unnamed index as `__null_dask_index__` (NeMo's tutorials write datasets
    so, then read them back): Dask's reader drops it; it was carried into every output as a column."""
    import dask.dataframe as dd

    from hpc_classify import DocumentDataset
    from hpc_classify.io.pieces import plan_pieces, read_piece

    source = pd.DataFrame({"text": [f"t{i}" for i in range(30)], "id": list(range(30))})
    dd.from_pandas(source[source.id % 3 > 0], npartitions=2).to_parquet(str(tmp_path / "out"))
    files = sorted(str(f) for f in (tmp_path / "out").glob("*.parquet"))
    assert "__null_dask_index__" in pq.read_schema(files[0]).names  # what Dask wrote
    expected = source[source.id % 3 > 0].to_dict("records")
    whole = pd.concat([read_documents(f).frame for f in files])
    assert whole.to_dict("records") == expected
    pieces = pd.concat([read_piece(f, piece).frame for f in files for piece in plan_pieces(f, 0, 1)])
    assert pieces.to_dict("records") == expected
    dataset = DocumentDataset.read_parquet(files).df.compute()
    assert "__null_dask_index__" not in dataset.columns and sorted(dataset["id"]) == [
        r["id"] for r in expected
    ]


@pytest.mark.parametrize("columns", [["text", "id"], ["id", "text"], ["id"]])
def test_parquet_columns_may_name_the_text_field(tmp_path, columns):
    path = str(tmp_path / "c.parquet")
    pq.write_table(pa.table({"id": [1, 2], "text": ["a", "b"], "other": [0, 0]}), path)
    frame = read_documents(path, columns=columns).frame
    assert list(frame.columns) == (columns if "text" in columns else [*columns, "text"])
    assert frame["text"].tolist() == ["a", "b"] and frame["id"].tolist() == [1, 2]


def test_parquet_dictionary_encoded_text_is_text(tmp_path):
    """pandas writes a categorical column dictionary-encoded: the same strings, read as plain text."""
    path = str(tmp_path / "d.parquet")
    pd.DataFrame({"text": pd.Categorical(["a", "b", None, "a"]), "id": [1, 2, 3, 4]}).to_parquet(path)
    result = read_documents(path, on_bad_row="skip")
    assert result.frame["text"].tolist() == ["a", "b", "a"] and result.frame["id"].tolist() == [1, 2, 4]
    assert [(b.line, b.reason) for b in result.bad_rows] == [(3, "text field 'text' is null")]


TWO_FIELDS = [
    {"id": 1, "text": "a", "prompt": "p"},
    {"id": 2, "text": "b", "prompt": None},
    {"id": 3, "text": None, "prompt": "q"},
    {"id": 4, "text": "d", "prompt": "r"},
]


@pytest.mark.parametrize("name", ["two.jsonl", "two.jsonl.gz", "two.parquet"])
def test_several_text_fields_a_row_bad_in_any_is_bad(tmp_path, name):
    """The driver reads with every classifier's text field: a row bad in any of them is set aside (skip) or
    the file's error names its line (error), whichever field it is bad in."""
    if name.endswith(".parquet"):
        path = str(tmp_path / name)
        pq.write_table(pa.Table.from_pylist(TWO_FIELDS), path)
    else:
        path = _write(tmp_path / name, _jsonl_bytes(TWO_FIELDS))
    result = read_documents(path, text_field=("text", "prompt"), on_bad_row="skip", columns=["id"])
    assert result.frame.to_dict("records") == [
        {"id": 1, "text": "a", "prompt": "p"},
        {"id": 4, "text": "d", "prompt": "r"},
    ]
    assert [(b.line, b.reason) for b in result.bad_rows] == [
        (2, "text field 'prompt' is null"),
        (3, "text field 'text' is null"),
    ]
    with pytest.raises(InputFileError) as info:
        read_documents(path, text_field=["prompt", "text"])
    assert info.value.line == 2 and "text field 'prompt' is null" in str(info.value)


@pytest.mark.parametrize("name", ["bom.jsonl", "bom.jsonl.gz"])
def test_a_utf8_byte_order_mark_is_not_part_of_the_first_document(tmp_path, name):
    data = b"\xef\xbb\xbf" + _jsonl_bytes([{"text": "a", "id": 1}, {"text": "\ufeffb", "id": 2}])
    path = _write(tmp_path / name, data)
    result = read_documents(path)
    assert result.bad_rows == [] and result.frame["text"].tolist() == ["a", "\ufeffb"]  # only the file's mark
    assert read_frame(path)["id"].tolist() == [1, 2]


def test_read_frame_has_no_text_checks_but_rejects_invalid_json(tmp_path):
    path = _write(tmp_path / "f.jsonl", b'{"text": null, "a": 1}\n{"b": 2}\n')
    frame = read_frame(path)
    assert list(frame.columns) == ["text", "a", "b"] and len(frame) == 2
    bad = _write(tmp_path / "g.jsonl", b'{"a": 1}\n{oops\n')
    with pytest.raises(InputFileError) as info:
        read_frame(bad)
    assert info.value.line == 2


def test_bad_policy_and_backend_names_are_refused(tmp_path):
    path = _write(tmp_path / "x.jsonl", _jsonl_bytes(ROWS))
    with pytest.raises(ConfigError):
        read_documents(path, on_bad_row="ignore")
    with pytest.raises(ConfigError):
        read_frame(path, backend="polars")


def test_cudf_backend_gives_clear_error_without_cudf(tmp_path):
    try:
        import cudf  # noqa: F401

        pytest.skip("cudf is installed")
    except Exception:
        pass
    path = _write(tmp_path / "x.jsonl", _jsonl_bytes(ROWS))
    with pytest.raises(ConfigError, match="backend 'cudf' is not available") as info:
        read_frame(path, backend="cudf")
    assert "backend='pandas'" in info.value.hint
