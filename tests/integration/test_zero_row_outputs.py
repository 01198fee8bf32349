"""A file with no output row (an empty input, every row quarantined) has no output file, in either format,
and a marker that counts it done: readers of the whole output directory (pyarrow.dataset, Dask) would
otherwise take the empty file's schema, dropping every other column, or fail on the empty JSON stream."""

from __future__ import annotations

import json
import os

import pytest
from driver_support import markers, output_files, run_args, run_cli, status_json, summary

from hpc_classify.io.markers import marker_path, read_marker
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

ZERO_ROW_FILES = ("a-empty.jsonl", "b-all-bad.jsonl")  # sort before the normal one, as a reader finds them


def _corpus(root) -> list[dict]:
    root.mkdir()
    (root / "a-empty.jsonl").write_bytes(b"")
    (root / "b-all-bad.jsonl").write_text('not json\n{"id": "x", "text": 5}\n', encoding="utf-8")
    texts, _ = synthetic_corpus(5, DOMAIN_LABELS, seed=3)
    rows = [{"id": f"c-{i}", "url": f"https://example.org/{i}", "text": t} for i, t in enumerate(texts)]
    (root / "c-normal.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_zero_row_files_have_no_output_and_count_as_done(tmp_path, tiny_domain_model, fmt):
    inputs, output = tmp_path / "in", tmp_path / "out"
    rows = _corpus(inputs)
    args = run_args(inputs, output, tiny_domain_model, "--on-bad-row", "skip", "--output-format", fmt)

    first = run_cli(args)

    assert first.returncode == 0, first.stderr[-3000:]
    expected_output = "c-normal.jsonl" if fmt == "jsonl" else "c-normal.parquet"
    for relpath in ZERO_ROW_FILES:
        marker = read_marker(marker_path(str(output), relpath))
        assert (marker.rows_out, marker.output_path, marker.output_size) == (0, "", 0)
    assert read_marker(marker_path(str(output), "b-all-bad.jsonl")).rows_bad == 2
    # Readers of the whole directory see every document with every column.
    if fmt == "parquet":
        import pyarrow.dataset as ds

        table = ds.dataset(str(output), format="parquet", exclude_invalid_files=False).to_table()
        read = table.to_pylist()
    else:
        import dask.dataframe as dd

        paths = sorted(str(p) for p in output_files(output).values())  # not the quarantines
        read = dd.read_json(paths, lines=True).compute().to_dict("records")
    assert [(r["id"], r["url"], r["text"]) for r in read] == [(r["id"], r["url"], r["text"]) for r in rows]
    assert all(r["domain_pred"] in DOMAIN_LABELS for r in read)
    assert sorted(output_files(output)) == [expected_output]

    status = status_json(output)
    assert (status["files_done"], status["files_remaining"], status["files_failed"]) == (3, 0, 0)

    second = run_cli(args)  # the zero-row files are done: nothing redone, none reported lost

    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(output)["files_processed"] == 0
    assert "no output in" not in second.stderr
    assert markers(output) == {*ZERO_ROW_FILES, "c-normal.jsonl"}
    assert sorted(output_files(output)) == [expected_output]


def test_a_leftover_output_of_a_zero_row_file_is_removed(tmp_path, tiny_domain_model):
    """An output under the name of a file that now has no row (from an attempt killed before its marker)
    is removed: a marker naming no output means that no file there holds rows of it."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    _corpus(inputs)
    args = run_args(inputs, output, tiny_domain_model, "--on-bad-row", "skip")
    assert run_cli(args).returncode == 0
    os.remove(marker_path(str(output), "a-empty.jsonl"))  # as if killed after its output, before its marker
    (output / "a-empty.jsonl").write_text('{"id": "old", "text": "old"}\n', encoding="utf-8")

    result = run_cli(args)

    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(output)["files_processed"] == 1
    assert sorted(output_files(output)) == ["c-normal.jsonl"]
    assert not os.path.exists(output / "a-empty.jsonl")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_pieces_of_no_output_row_are_left_out_of_the_assembly(tmp_path, tiny_domain_model, fmt):
    """A file cut into pieces: those whose rows were all quarantined wrote nothing, the file's output holds
    the others' rows in order; a file all of whose pieces had none gets no output."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    bad = [json.dumps({"id": f"bad-{i}", "text": i, "pad": "x" * 80}) for i in range(30)]
    texts, _ = synthetic_corpus(30, DOMAIN_LABELS, seed=5)
    good = [json.dumps({"id": f"good-{i}", "text": t}) for i, t in enumerate(texts)]
    (inputs / "all-bad.jsonl").write_text("\n".join(bad) + "\n", encoding="utf-8")
    (inputs / "mixed.jsonl").write_text("\n".join(bad + good) + "\n", encoding="utf-8")
    args = run_args(
        inputs,
        output,
        tiny_domain_model,
        "--on-bad-row",
        "skip",
        "--output-format",
        fmt,
        "--piece-bytes",
        "1000",
    )

    result = run_cli(args)

    assert result.returncode == 0, result.stderr[-3000:]
    all_bad, mixed = (read_marker(marker_path(str(output), r)) for r in ("all-bad.jsonl", "mixed.jsonl"))
    assert len(all_bad.extra["pieces"]) > 1 and len(mixed.extra["pieces"]) > 2
    assert (all_bad.rows_out, all_bad.rows_bad, all_bad.output_path) == (0, 30, "")
    assert (mixed.rows_out, mixed.rows_bad) == (30, 30)
    name = f"mixed.{fmt}"
    assert sorted(output_files(output)) == [name]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        ids = pq.read_table(output / name).column("id").to_pylist()
    else:
        ids = [json.loads(line)["id"] for line in (output / name).read_text().splitlines()]
    assert ids == [f"good-{i}" for i in range(30)]
    assert status_json(output)["files_done"] == 2
