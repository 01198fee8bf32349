"""Whole-file problems are one error for the file, not every row a bad row: compressed data under a plain
JSONL name (gzip, zstd, bzip2, xz), text in UTF-16/UTF-32, and a Parquet text column that is not text
(binary, list, null, a number). Each read them as "invalid UTF-8 (byte N of the line)" (or "has type ...")
with the row hint; under --on-bad-row skip every line was quarantined."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from hpc_classify.bench.length_classifier import LengthClassifier
from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import InputFileError
from hpc_classify.io.columns import sample_columns
from hpc_classify.io.pieces import iter_stream_pieces, plan_pieces, read_piece
from hpc_classify.io.readers import BAD_ROW_HINT, read_documents, read_frame

TEXT = "".join(json.dumps({"text": f"document {i}", "id": i}) + "\n" for i in range(200))
DATA = TEXT.encode()


def _whole_file_error(path: str, on_bad_row: str) -> InputFileError:
    with pytest.raises(InputFileError) as caught:
        read_documents(path, on_bad_row=on_bad_row)
    error = caught.value
    assert error.path == path and error.line is None and not error.retryable
    return error


@pytest.mark.parametrize(
    ("name", "data", "problem", "remedy"),
    [
        ("g.jsonl", gzip.compress(DATA), "this file is gzip-compressed", "name it g.jsonl.gz"),
        (
            "z.json",
            zstandard.ZstdCompressor().compress(DATA),
            "this file is zstd-compressed",
            "name it z.jsonl.zst",
        ),
        ("b.jsonl", bz2.compress(DATA), "this file is bzip2-compressed", "name it b.jsonl.bz2"),
        ("x.json", lzma.compress(DATA), "this file is xz-compressed", "name it x.jsonl.xz"),
        ("twice.jsonl.xz", lzma.compress(bz2.compress(DATA)), "its xz data holds bzip2-compressed", "once"),
        (
            "u.jsonl.bz2",
            bz2.compress(TEXT.encode("utf-16")),
            "this file's decompressed text is UTF-16 text",
            "bzip2 -dc u.jsonl.bz2 | iconv -f UTF-16 -t UTF-8 | bzip2 > u.utf8.jsonl.bz2",
        ),
        ("u.jsonl", TEXT.encode("utf-16"), "this file is UTF-16 text", "iconv -f UTF-16 -t UTF-8 u.jsonl"),
        ("le.jsonl", TEXT.encode("utf-16-le"), "this file is UTF-16LE text", "iconv -f UTF-16LE -t UTF-8"),
        ("be.jsonl", TEXT.encode("utf-16-be"), "this file is UTF-16BE text", "iconv -f UTF-16BE -t UTF-8"),
        ("w.jsonl", TEXT.encode("utf-32"), "this file is UTF-32 text", "iconv -f UTF-32 -t UTF-8"),
        ("wle.jsonl", TEXT.encode("utf-32-le"), "this file is UTF-32LE text", "iconv -f UTF-32LE"),
        ("twice.jsonl.gz", gzip.compress(gzip.compress(DATA)), "its gzip data holds gzip-compressed", "once"),
        (
            "u.jsonl.zst",
            zstandard.ZstdCompressor().compress(TEXT.encode("utf-16")),
            "this file's decompressed text is UTF-16 text",
            "zstd -dc u.jsonl.zst | iconv -f UTF-16 -t UTF-8 | zstd > u.utf8.jsonl.zst",
        ),
    ],
)
@pytest.mark.parametrize("on_bad_row", ["error", "skip"])
def test_a_file_that_is_not_utf8_jsonl_is_one_error_under_either_policy(
    tmp_path, name, data, problem, remedy, on_bad_row
):
    path = str(tmp_path / name)
    with open(path, "wb") as f:
        f.write(data)
    error = _whole_file_error(path, on_bad_row)
    assert error.reason.startswith(problem) and remedy in error.hint
    assert "invalid UTF-8" not in str(error) and error.hint != BAD_ROW_HINT


def test_every_piece_and_the_stream_of_such_a_file_say_so(tmp_path):
    plain = tmp_path / "u.jsonl"
    plain.write_bytes(TEXT.encode("utf-16"))
    pieces = plan_pieces(str(plain), plain.stat().st_size, 1000)
    assert len(pieces) > 3
    for piece in pieces:  # a piece past the start read its lines as bad rows too
        with pytest.raises(InputFileError, match="UTF-16 text"):
            read_piece(str(plain), piece, on_bad_row="skip")
    packed = tmp_path / "u.jsonl.gz"
    packed.write_bytes(gzip.compress(TEXT.encode("utf-16")))
    with pytest.raises(InputFileError, match="UTF-16 text"):
        list(iter_stream_pieces(str(packed), 1000, on_bad_row="skip"))


def test_the_dataset_api_and_read_frame_say_so(tmp_path):
    path = str(tmp_path / "docs.jsonl")
    with open(path, "wb") as f:
        f.write(bz2.compress(DATA))
    with pytest.raises(InputFileError, match="bzip2-compressed, but its name says plain JSONL"):
        DocumentDataset.read_json(path).df.compute()
    with pytest.raises(InputFileError, match="bzip2-compressed"):
        read_frame(path)


def test_the_column_sampler_stops_at_such_a_file(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_bytes(TEXT.encode("utf-16"))
    sample = sample_columns(str(path), 1000)
    assert (sample.columns, sample.rows, sample.whole_file) == ((), 0, False)


@pytest.mark.parametrize(
    "lines",
    [
        b"\n\n" + DATA,  # blank lines first
        b"\xef\xbb\xbf" + DATA,  # UTF-8 with a byte order mark
        b"",
    ],
)
def test_utf8_files_are_read_as_before(tmp_path, lines):
    path = tmp_path / "ok.jsonl"
    path.write_bytes(lines)
    assert len(read_documents(str(path), on_bad_row="skip").frame) == lines.count(b"}\n")


def test_a_line_of_nul_bytes_is_still_a_bad_row(tmp_path):
    """A file whose start was zeroed (a crash) is not UTF-32: its lines say what they are."""
    path = tmp_path / "zeroed.jsonl"
    path.write_bytes(b"\x00" * 64 + b"\n" + DATA)
    result = read_documents(str(path), on_bad_row="skip")
    assert len(result.frame) == 200 and [b.line for b in result.bad_rows] == [1]


@pytest.mark.parametrize(
    ("column", "shown", "remedy"),
    [
        (pa.array([b"a", b"b"], pa.binary()), "binary", "cast(pa.string())"),
        (pa.array([b"a", b"b"], pa.large_binary()), "large_binary", ".str.decode('utf-8')"),
        (pa.array([["a"], ["b"]]), "list<element: string>", ".str.join("),
        (pa.nulls(2), "null", "every value of the column is null"),
        (pa.array([1, 2]), "int64", "astype(str)"),
    ],
)
@pytest.mark.parametrize("on_bad_row", ["error", "skip"])
def test_a_parquet_text_column_that_is_not_text_is_one_error(tmp_path, column, shown, remedy, on_bad_row):
    path = str(tmp_path / "p.parquet")
    pq.write_table(pa.table({"id": [1, 2], "text": column}), path)
    error = _whole_file_error(path, on_bad_row)
    assert error.reason.startswith(f"text field 'text' has the Arrow type {shown}, not string")
    assert remedy in error.hint and "--text-field" in error.hint
    with pytest.raises(InputFileError, match="not string"):
        read_piece(path, plan_pieces(path, os.path.getsize(path), 1 << 20)[0], on_bad_row=on_bad_row)
    assert read_documents(path, text_field=None).frame["id"].tolist() == [1, 2]  # no text checked: read


def test_a_categorical_parquet_text_column_is_text(tmp_path):
    path = str(tmp_path / "c.parquet")
    pq.write_table(pa.table({"text": pa.array(["a", "b", "a"]).dictionary_encode()}), path)
    assert read_documents(path).frame["text"].tolist() == ["a", "b", "a"]


def test_bad_row_hints_name_the_policy_as_the_cli_and_python_spell_it(tmp_path):
    """The Python API's setting is on_bad_row="skip" (run()); the hints named only the CLI's flag (a
    DocumentDataset read has no such setting: it refuses bad rows, as NeMo's readers)."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"{oops\n")
    with pytest.raises(InputFileError) as caught:
        read_documents(str(path))
    assert "--on-bad-row skip" in caught.value.hint and 'on_bad_row="skip"' in caught.value.hint
    with pytest.raises(InputFileError) as caught:
        LengthClassifier().texts(pd.DataFrame({"text": ["a", None]}), "frame")
    assert "--on-bad-row skip" in caught.value.hint and 'on_bad_row="skip"' in caught.value.hint


@pytest.mark.parametrize("on_bad_row", ["error", "skip"])
def test_a_parquet_file_without_the_text_column_is_one_error(tmp_path, on_bad_row):
    """Every row was quarantined as "missing text field 'text'" under skip (the schema is every row's): one
    error for the file names its columns and the setting that picks the column, whole or in pieces."""
    path = str(tmp_path / "p.parquet")
    pq.write_table(pa.table({"id": [1, 2, 3], "content": ["a", "b", "c"]}), path, row_group_size=1)
    error = _whole_file_error(path, on_bad_row)
    assert error.reason.startswith("has no text column 'text' (its columns: 'id', 'content')")
    assert "--text-field content" in error.hint and "text_field='content'" in error.hint
    assert isinstance(error, KeyError)  # MissingColumnError: what NeMo's pandas would raise
    pieces = plan_pieces(path, os.path.getsize(path), 1)
    assert len(pieces) == 3
    for piece in pieces:
        with pytest.raises(InputFileError, match="has no text column 'text'") as caught:
            read_piece(path, piece, on_bad_row=on_bad_row)
        assert caught.value.line is None and not caught.value.retryable
    with pytest.raises(InputFileError, match=r"has no text column 'body'.*content"):
        read_documents(path, text_field=["content", "body"], on_bad_row=on_bad_row)
    assert read_documents(path, text_field="content").frame["content"].tolist() == ["a", "b", "c"]


def test_an_empty_parquet_file_without_the_text_column_has_zero_rows(tmp_path):
    """No rows: nothing lacks a text (as an empty file lacks columns=' columns without error)."""
    path = str(tmp_path / "e.parquet")
    pq.write_table(pa.table({"content": pa.array([], pa.string())}), path)
    result = read_documents(path)
    assert len(result.frame) == 0 and result.bad_rows == []


def test_a_jsonl_row_without_the_text_field_is_still_a_bad_row(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_text('{"text": "a"}\n{"content": "b"}\n')
    result = read_documents(str(path), on_bad_row="skip")
    assert result.frame["text"].tolist() == ["a"]
    assert [(b.line, b.reason) for b in result.bad_rows] == [(2, "missing text field 'text'")]
