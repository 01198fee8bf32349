"""The readers' parameters: NeMo Curator 0.7.1's positional order in the public ones (users call them
positionally), keywords only in the internal `read_frame_and_sources`, where blocksize and files_per_partition
(ordered differently by the public readers) could otherwise be swapped by position without an error."""

from __future__ import annotations

import inspect
import json

import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.datasets.reading import read_data, read_frame_and_sources

# NeMo Curator 0.7.1's positional parameters, in order (its datasets/doc_dataset.py and utils/distributed_utils.py).
NEMO_POSITIONAL = {
    "read_json": [
        "input_files",
        "backend",
        "files_per_partition",
        "blocksize",
        "add_filename",
        "input_meta",
        "columns",
    ],
    "read_parquet": ["input_files", "backend", "files_per_partition", "blocksize", "add_filename", "columns"],
    "read_pickle": ["input_files", "backend", "columns"],
    "read_data": [
        "input_files",
        "file_type",
        "backend",
        "blocksize",
        "files_per_partition",
        "add_filename",
        "input_meta",
        "columns",
    ],
}


def _positional(function) -> list[str]:
    return [
        p.name for p in inspect.signature(function).parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD
    ]


@pytest.mark.parametrize("name", sorted(NEMO_POSITIONAL))
def test_public_readers_keep_nemos_positional_order(name: str) -> None:
    function = read_data if name == "read_data" else getattr(DocumentDataset, name)
    assert _positional(function) == NEMO_POSITIONAL[name]


def test_read_frame_and_sources_takes_keywords_after_the_file_type() -> None:
    assert _positional(read_frame_and_sources) == ["input_files", "file_type"]
    with pytest.raises(TypeError, match="positional argument"):
        read_frame_and_sources("x.jsonl", "jsonl", "pandas", None, 2, False, None, None, {})


def test_positional_calls_partition_by_files_per_partition(tmp_path) -> None:
    """files_per_partition=2 given by position: 5 files in 3 partitions (swapped with blocksize: 5)."""
    paths = []
    for index in range(5):
        path = tmp_path / f"f{index}.jsonl"
        path.write_text(json.dumps({"id": index, "text": f"document {index}"}) + "\n")
        paths.append(str(path))
    by_json = DocumentDataset.read_json(paths, "pandas", 2, None)
    by_read_data = read_data(paths, "jsonl", "pandas", None, 2)
    assert by_json.df.npartitions == by_read_data.npartitions == 3
    assert sorted(by_json.df.compute()["id"]) == sorted(by_read_data.compute()["id"]) == list(range(5))
