""".jsonl.bz2 and .jsonl.xz inputs (NeMo's pandas reads them, compression from the suffix) were refused as
"not read here": they read as the same rows as the uncompressed file, whole, as streamed pieces, through
the dataset API, and JSONL outputs keep their compression, as .gz/.zst ones do."""

from __future__ import annotations

import bz2
import json
import lzma

import pandas as pd
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.datasets.output_names import output_name
from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import expand_inputs
from hpc_classify.io.formats import output_relpath
from hpc_classify.io.pieces import iter_stream_pieces
from hpc_classify.io.readers import read_documents, read_frame
from hpc_classify.io.writers import write_frame

ROWS = [{"id": i, "text": f"document {i} é", "n": None if i % 3 else i * 10**15} for i in range(40)]
LINES = [json.dumps(row, ensure_ascii=False) for row in ROWS]
LINES.insert(7, '{"id": "bad", "text": null}')  # a bad row: line 8 in each file
LINES.insert(20, "")  # a blank line: no row
DATA = ("\n".join(LINES) + "\n").encode()
COMPRESS = {".bz2": bz2.compress, ".xz": lzma.compress}


@pytest.fixture
def files(tmp_path):
    (tmp_path / "plain.jsonl").write_bytes(DATA)
    for suffix, compress in COMPRESS.items():
        (tmp_path / f"packed{suffix[1:]}.jsonl{suffix}").write_bytes(compress(DATA))
    return tmp_path


def _same(result, plain) -> None:
    pd.testing.assert_frame_equal(result.frame, plain.frame)
    assert result.bad_rows == plain.bad_rows


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_whole_reads_and_streamed_pieces_equal_the_uncompressed_file(files, suffix):
    path, plain_path = str(files / f"packed{suffix[1:]}.jsonl{suffix}"), str(files / "plain.jsonl")
    plain = read_documents(plain_path, on_bad_row="skip")
    assert len(plain.frame) == 40 and [b.line for b in plain.bad_rows] == [8]
    _same(read_documents(path, on_bad_row="skip"), plain)
    pd.testing.assert_frame_equal(read_frame(path), read_frame(plain_path))
    pieces = list(iter_stream_pieces(path, 200, on_bad_row="skip"))
    assert len(pieces) > 5 and pieces[-1].last
    assert [b for p in pieces for b in p.result.bad_rows] == plain.bad_rows
    pd.testing.assert_frame_equal(pd.concat([p.result.frame for p in pieces]), plain.frame)
    # a resumed stream skips the done pieces' lines
    rest = list(iter_stream_pieces(path, 200, on_bad_row="skip", first_index=3, **_after(pieces[2])))
    pd.testing.assert_frame_equal(
        pd.concat([p.result.frame for p in rest]), pd.concat([p.result.frame for p in pieces[3:]])
    )
    with pytest.raises(InputFileError, match=r":8: text field 'text' is null"):
        read_documents(path)


def _after(piece) -> dict:
    return {"skip_lines": piece.end_line, "skip_rows": piece.end_row}


def test_inputs_are_listed_and_read_by_the_dataset_api(files):
    assert sorted(f.relpath for f in expand_inputs([str(files)])) == [
        "packedbz2.jsonl.bz2",
        "packedxz.jsonl.xz",
        "plain.jsonl",
    ]
    good = files / "good"
    good.mkdir()
    clean = b"".join(line + b"\n" for line in DATA.splitlines() if b'"bad"' not in line)
    (good / "a.jsonl").write_bytes(clean)
    for suffix, compress in COMPRESS.items():
        (good / f"b{suffix[1:]}.jsonl{suffix}").write_bytes(compress(clean))
    frames = {
        name: DocumentDataset.read_json(str(good / name), add_filename=True).to_pandas()
        for name in ("a.jsonl", "bbz2.jsonl.bz2", "bxz.jsonl.xz")
    }
    plain = frames.pop("a.jsonl")
    for name, frame in frames.items():
        assert frame["file_name"].unique().tolist() == [name]
        pd.testing.assert_frame_equal(frame.drop(columns="file_name"), plain.drop(columns="file_name"))
    whole = DocumentDataset.read_json(str(good), blocksize="1kb").to_pandas()
    assert len(whole) == 3 * 40


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_outputs_keep_the_compression_and_read_back_exactly(tmp_path, suffix):
    assert output_relpath(f"d/x.jsonl{suffix}", "jsonl") == f"d/x.jsonl{suffix}"
    assert output_relpath(f"x.json{suffix}", "parquet") == "x.parquet"
    assert output_name(f"x.jsonl{suffix}", "jsonl") == f"x.jsonl{suffix}"
    frame = pd.DataFrame(ROWS)
    out = tmp_path / f"out.jsonl{suffix}"
    write_frame(frame, str(out), "jsonl")
    decompress = bz2.decompress if suffix == ".bz2" else lzma.decompress
    assert [json.loads(line) for line in decompress(out.read_bytes()).splitlines()] == ROWS


@pytest.mark.parametrize("suffix", list(COMPRESS))
def test_a_truncated_or_corrupt_file_is_one_error_naming_it(tmp_path, suffix):
    path = tmp_path / f"cut.jsonl{suffix}"
    path.write_bytes(COMPRESS[suffix](DATA)[:-20])
    kind = suffix[1:]
    with pytest.raises(InputFileError, match=f"cannot read the file as {kind} .*EOFError") as caught:
        read_documents(str(path), on_bad_row="skip")
    assert caught.value.path == str(path) and not caught.value.retryable
    with pytest.raises(InputFileError, match=f"cannot read the file as {kind}"):
        list(iter_stream_pieces(str(path), 200, on_bad_row="skip"))
    path.write_bytes(COMPRESS[suffix](DATA)[:12] + b"\x00" * 64)
    with pytest.raises(InputFileError, match=f"cannot read the file as {kind}"):
        read_documents(str(path), on_bad_row="skip")
