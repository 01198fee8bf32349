"""A `.jsonl` file that is one JSON array (pretty-printed, or on one line) is said to be one, with the command
that converts it, at its first line: read as lines it was "invalid JSON" or "not a JSON object" with the hint
"fix the row", and under --on-bad-row skip all bad rows but the odd line that happens to be an object."""

from __future__ import annotations

import gzip
import json

import pytest

from hpc_classify.errors import InputFileError
from hpc_classify.io.pieces import iter_stream_pieces, plan_pieces, read_piece
from hpc_classify.io.readers import read_documents
from hpc_classify.io.rows import BAD_ROW_HINT, JSON_ARRAY_REASON

DOCUMENTS = [{"text": f"document {i}", "id": i} for i in range(40)]
PRETTY = json.dumps(DOCUMENTS, indent=2).encode() + b"\n"
ONE_LINE = json.dumps(DOCUMENTS).encode() + b"\n"


@pytest.mark.parametrize(
    "data", [PRETTY, b"\xef\xbb\xbf" + PRETTY, ONE_LINE], ids=["pretty", "bom", "one-line"]
)
def test_a_json_array_file_is_named_as_one_with_the_conversion(tmp_path, data):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(data)
    with pytest.raises(InputFileError) as raised:
        read_documents(str(path), on_bad_row="error")
    message = str(raised.value)
    assert f"{path}:1:" in message and JSON_ARRAY_REASON in message
    assert f"jq -c '.[]' {path}" in message and "fix the row" not in message

    skipped = read_documents(str(path), on_bad_row="skip")
    assert skipped.bad_rows[0].line == 1 and skipped.bad_rows[0].reason.endswith(JSON_ARRAY_REASON)
    # The other lines keep their own reasons: only the first line can say what the file is.
    assert not any(JSON_ARRAY_REASON in bad.reason for bad in skipped.bad_rows[1:])


def test_pieces_and_streams_say_it_at_the_first_line_only(tmp_path):
    plain = tmp_path / "docs.jsonl"
    plain.write_bytes(PRETTY)
    pieces = plan_pieces(str(plain), len(PRETTY), 512)
    assert len(pieces) > 1
    bad = [b for p in pieces for b in read_piece(str(plain), p, on_bad_row="skip").bad_rows]
    assert [b.line for b in bad if JSON_ARRAY_REASON in b.reason] == [1]

    packed = tmp_path / "docs.jsonl.gz"
    packed.write_bytes(gzip.compress(PRETTY))
    streamed = [b for s in iter_stream_pieces(str(packed), 512, on_bad_row="skip") for b in s.result.bad_rows]
    assert [b.line for b in streamed if JSON_ARRAY_REASON in b.reason] == [1]


def test_an_array_row_further_down_a_jsonl_file_is_an_ordinary_bad_row(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b'{"text": "a"}\n[1, 2]\n{"text": "b"}\n')
    with pytest.raises(InputFileError) as raised:
        read_documents(str(path), on_bad_row="error")
    assert f"{path}:2: not a JSON object (a JSON array)" in str(raised.value)
    assert BAD_ROW_HINT in str(raised.value) and JSON_ARRAY_REASON not in str(raised.value)
