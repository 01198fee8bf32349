"""Every partition of a dataset read from files has NeMo's index (a RangeIndex from 0), and still knows which
row of which file each of its rows is, for errors that name it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hpc_classify.classifiers.frames import FrameMethods
from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import InputFileError
from hpc_classify.io.file_rows import FILE_ROWS


def _corpus(tmp_path, sizes=(3, 3, 40)) -> list[str]:
    paths = []
    for n, size in zip("abc", sizes, strict=True):
        path = tmp_path / f"{n}.jsonl"
        path.write_text("".join(json.dumps({"text": f"{n}{i} " + "x" * 40}) + "\n" for i in range(size)))
        paths.append(str(path))
    return paths


def _readings(paths: list[str], tmp_path) -> dict[str, DocumentDataset]:
    pd.concat([pd.read_json(p, lines=True) for p in paths]).to_parquet(
        tmp_path / "all.parquet", row_group_size=4
    )
    return {
        "packed": DocumentDataset.read_json(paths),  # the default blocksize: the small files in one partition
        "pieces": DocumentDataset.read_json(paths, blocksize=500),  # c.jsonl cut into pieces
        "per file": DocumentDataset.read_json(paths, files_per_partition=1),
        "two files": DocumentDataset.read_json(paths, files_per_partition=2),
        "parquet pieces": DocumentDataset.read_parquet(str(tmp_path / "all.parquet"), blocksize=200),
    }


def test_every_partition_is_indexed_from_0_so_a_new_series_lines_up(tmp_path):
    # A user's map_partitions that adds a pd.Series (a model's outputs, in row order) aligns it on the
    # index: with the files' own row numbers it took another file's values, or NaN in a piece.
    paths = _corpus(tmp_path)
    for how, dataset in _readings(paths, tmp_path).items():
        for part in dataset.df.to_delayed():
            part = part.compute()
            assert part.index.equals(pd.RangeIndex(len(part))), how

        def add(part):
            part = part.copy()
            part["pred"] = pd.Series([t.split()[0] for t in part["text"]])
            return part

        meta = dataset.df._meta.assign(pred=pd.Series(dtype=object))
        out = dataset.df.map_partitions(add, meta=meta).compute()
        expected = [json.loads(line)["text"].split()[0] for p in paths for line in open(p)]
        assert out["pred"].tolist() == expected, how


class _Texts(FrameMethods):
    text_field = "text"


def test_a_bad_text_is_named_by_its_file_and_row_there(tmp_path):
    paths = _corpus(tmp_path)
    for bad_path, bad_row in ((paths[1], 1), (paths[2], 30)):  # in a packed partition; in a piece
        lines = open(bad_path).read().splitlines()
        good = list(lines)
        lines[bad_row] = json.dumps({"text": None})
        open(bad_path, "w").write("\n".join(lines) + "\n")
        for how, dataset in _readings(paths, tmp_path).items():
            if how.startswith("parquet"):
                continue
            messages = []
            for part in dataset.df.to_delayed():
                part = part.compute()
                try:
                    _Texts().texts(part.iloc[::-1], "<dataframe>")  # reordered: found by label
                except InputFileError as exc:
                    messages.append(str(exc).splitlines()[0])
            assert messages == [
                f"{bad_path}: 1 row(s) whose 'text' is missing or not a string, first at row {bad_row + 1}"
            ], how
        open(bad_path, "w").write("\n".join(good) + "\n")


def test_after_rows_are_dropped_and_renumbered_the_partitions_row_is_named_not_a_wrong_file_row(tmp_path):
    paths = _corpus(tmp_path, sizes=(3, 3, 4))
    lines = open(paths[2]).read().splitlines()
    lines[3] = json.dumps({"text": None})  # c.jsonl's 4th row; the partition's 10th
    open(paths[2], "w").write("\n".join(lines) + "\n")
    part = DocumentDataset.read_json(paths).df.compute()  # the three small files: one partition
    kept = part[~part["text"].fillna("").str.startswith("a")].reset_index(drop=True)  # 7 rows, labels 0..6
    assert kept.attrs[FILE_ROWS].locate(6) == (
        paths[2],
        0,
    )  # what the label alone names: c.jsonl row 1, wrong
    with pytest.raises(InputFileError) as caught:
        _Texts().texts(kept, "<dataframe>")
    assert str(caught.value).splitlines()[0] == (
        "<dataframe>: 1 row(s) whose 'text' is missing or not a string, first at row 7 of the partition"
    )


def test_the_file_rows_are_kept_beside_the_data_not_written(tmp_path):
    paths = _corpus(tmp_path)
    dataset = DocumentDataset.read_json(paths, blocksize=500)
    for part in dataset.df.to_delayed():
        part = part.compute()
        rows = part.attrs[FILE_ROWS]
        for label, text in part["text"].items():
            path, row = rows.locate(label)
            assert json.loads(open(path).read().splitlines()[row])["text"] == text
    dataset.to_parquet(str(tmp_path / "out"))
    back = DocumentDataset.read_parquet(str(tmp_path / "out"), files_per_partition=1)
    assert back.df.compute()["text"].tolist() == dataset.df.compute()["text"].tolist()
    assert all(FILE_ROWS not in (pd.read_parquet(p).attrs) for p in (tmp_path / "out").glob("*.parquet"))


@pytest.mark.parametrize("files_per_partition", [1, 2])
def test_a_pickle_keeps_the_index_it_was_saved_with(tmp_path, files_per_partition):
    # NeMo reads a pickle with pd.read_pickle: its own index is data the user saved.
    pd.DataFrame({"text": ["a", "b"]}, index=[10, 20]).to_pickle(tmp_path / "a.pkl")
    pd.DataFrame({"text": ["c"]}, index=[30]).to_pickle(tmp_path / "b.pkl")
    dataset = DocumentDataset.read_pickle(str(tmp_path), files_per_partition=files_per_partition)
    assert dataset.df.compute().index.tolist() == [10, 20, 30]


@pytest.mark.parametrize(
    "read", [{}, {"blocksize": 100}, {"files_per_partition": 1}, {"add_filename": True}], ids=repr
)
def test_a_parquet_files_named_index_is_a_column_not_lost(tmp_path, read):
    """`set_index("doc_id").to_parquet(...)`: pyarrow makes doc_id the index, which the partition's index from
    0 replaced: the ids were gone. They are a column, as `hpc-classify run` keeps them."""
    source = pd.DataFrame({"doc_id": [f"d{i}" for i in range(9)], "text": [f"t{i}" for i in range(9)]})
    paths = [str(tmp_path / "f.parquet"), str(tmp_path / "g.parquet")]
    source.iloc[:6].set_index("doc_id").to_parquet(paths[0])
    source.iloc[6:].set_index("doc_id").to_parquet(paths[1])
    frame = DocumentDataset.read_parquet(paths, **read).df.compute()
    assert frame[["doc_id", "text"]].values.tolist() == source.values.tolist()
    assert list(DocumentDataset.read_parquet(paths, columns=["text"]).df.columns) == ["text"]
