"""--keep-columns: what is written does not depend on where a file is cut into pieces. A JSONL row without
a kept key has null there, in any piece (even one whose rows all lack it); a Parquet file whose schema lacks
a kept column fails, whole or in any piece; a kept column no sampled row has is one setting error."""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.driver.column_checks import SAMPLE_FILES, SAMPLE_ROWS, check_keep_columns
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.task import lean_columns
from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.discovery import InputFile
from hpc_classify.io.formats import PARQUET
from hpc_classify.io.json_lines import frame_rows
from hpc_classify.io.pieces import plan_pieces, read_piece
from hpc_classify.io.readers import read_documents


class _Labeller:
    """A classifier stand-in: one output column, "pred"."""

    def output_columns(self) -> list[str]:
        return ["pred"]


def _lean(path: str, frame: pd.DataFrame) -> pd.DataFrame:
    predicted = frame.assign(pred="x")
    return lean_columns(
        predicted, [_Labeller()], ["url"], "row_number", InputFile(path, os.path.basename(path))
    )


def _half_with_url(tmp_path) -> tuple[str, list[dict]]:
    """200 rows, only the first 100 with "url"; and what a lean output of it holds, row by row."""
    records = [
        {"text": f"doc {i} " * 10, **({"url": f"http://x/{i}"} if i < 100 else {})} for i in range(200)
    ]
    path = tmp_path / "k.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    expected = [{"row_number": i, "url": r.get("url"), "pred": "x"} for i, r in enumerate(records)]
    return str(path), expected


@pytest.mark.parametrize("piece_bytes", [300, 4000, 1 << 30])
def test_a_key_only_some_jsonl_rows_have_is_null_in_every_piece(tmp_path, piece_bytes):
    path, expected = _half_with_url(tmp_path)
    pieces = plan_pieces(path, os.path.getsize(path), piece_bytes)
    lean = [_lean(path, read_piece(path, p, text_field="text").frame) for p in pieces]

    assert [row for frame in lean for row in frame_rows(frame)] == expected
    # Parquet outputs of the pieces assemble into one file with the same values (null unified with text).
    parts = []
    for i, frame in enumerate(lean):
        parts.append(str(tmp_path / f"part{i}.parquet"))
        with open(parts[-1], "wb") as f:
            PARQUET.write(frame, f, parts[-1])
    out = io.BytesIO()
    PARQUET.assemble(parts, out)
    assembled = pq.read_table(pa.BufferReader(out.getvalue()))
    assert assembled.to_pylist() == expected
    url_type = assembled.schema.field("url").type
    assert pa.types.is_string(url_type) or pa.types.is_large_string(url_type)


def test_a_jsonl_file_none_of_whose_rows_has_a_kept_key_writes_it_null(tmp_path):
    path = tmp_path / "none.jsonl"
    path.write_text('{"text": "a"}\n{"text": "b"}\n')

    lean = _lean(str(path), read_documents(str(path), text_field="text").frame)

    assert list(frame_rows(lean)) == [
        {"row_number": 0, "url": None, "pred": "x"},
        {"row_number": 1, "url": None, "pred": "x"},
    ]


def test_a_parquet_file_without_a_kept_column_fails_whole_and_in_every_piece(tmp_path):
    path = str(tmp_path / "p.parquet")
    pq.write_table(
        pa.table({"text": [f"doc {i}" for i in range(40)], "id": list(range(40))}), path, row_group_size=10
    )
    message = (
        f"{path}: no column(s) 'url' to keep in this Parquet file's schema (columns: text, id, pred)\n"
        "HINT: leave the column out of --keep-columns, or give the file that column"
    )
    frames = [read_documents(path, text_field="text").frame]
    frames += [
        read_piece(path, p, text_field="text").frame for p in plan_pieces(path, os.path.getsize(path), 1)
    ]
    frames.append(frames[0].iloc[:0])  # a piece whose rows were all bad
    assert len(frames) == 42  # whole, 40 one-row pieces, no row
    for frame in frames:
        with pytest.raises(InputFileError) as caught:
            _lean(path, frame)
        assert str(caught.value) == message


def _planned(path) -> PlannedFile:
    return PlannedFile(str(path), os.path.basename(path), os.path.getsize(path))


def test_a_kept_column_no_sampled_row_has_is_one_setting_error(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "a", "id": 1}\n')
    (tmp_path / "b.jsonl").write_text('{"text": "b", "url": "u"}\n')
    files = [_planned(tmp_path / "a.jsonl"), _planned(tmp_path / "b.jsonl")]

    check_keep_columns(["id", "url"], None, files)  # each in one file: fine
    with pytest.raises(ConfigError) as caught:
        check_keep_columns(["id", "urll"], None, files)

    assert caught.value.one_line() == (
        f"--keep-columns 'urll': none of the 2 rows of {tmp_path / 'a.jsonl'}, {tmp_path / 'b.jsonl'} "
        "has that column (their columns: text, id, url); HINT: did you mean 'url'? fix --keep-columns "
        "(keep_columns in a YAML config), or leave the column out"
    )
    with pytest.raises(ConfigError, match="^--key-column 'key': none of the 2 rows"):
        check_keep_columns(["id", "key"], "key", files)


def test_a_kept_column_the_sample_misses_is_a_warning_where_rows_were_not_all_seen(tmp_path, caplog):
    """A corpus whose first files come from a source without `url`: refusing would leave no way to run it."""
    files = []
    for n in range(SAMPLE_FILES + 1):
        path = tmp_path / f"{n}.jsonl"
        path.write_text('{"text": "a", "id": 1}\n' if n < SAMPLE_FILES else '{"text": "b", "url": "u"}\n')
        files.append(_planned(path))
    long = tmp_path / "long.jsonl"
    long.write_text('{"text": "a"}\n' * SAMPLE_ROWS + '{"text": "b", "url": "u"}\n')

    with caplog.at_level("WARNING", logger="hpc_classify.driver.column_checks"):
        check_keep_columns(["id", "url"], None, files)
        check_keep_columns(["url"], None, [_planned(long)])

    assert [m.split(":")[0] for m in caplog.messages] == ["--keep-columns 'url'"] * 2
    assert caplog.messages[0].startswith(
        f"--keep-columns 'url': none of the {SAMPLE_FILES} rows sampled from "
    )
    assert caplog.messages[1].endswith("the run goes on: rows without it get null there")
