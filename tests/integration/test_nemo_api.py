"""The NeMo Curator excerpt from the README, end to end on files, with the pandas backend."""

from __future__ import annotations

import json

import pandas as pd

from hpc_classify import DocumentDataset, DomainClassifier, get_all_files_paths_under
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus


def write_shards(root, shard_sizes, seed=3):
    texts, _ = synthetic_corpus(sum(shard_sizes), DOMAIN_LABELS, seed=seed)
    start = 0
    for index, size in enumerate(shard_sizes):
        rows = [{"id": f"s{index}-{i}", "text": texts[start + i], "meta": {"n": i}} for i in range(size)]
        (root / f"shard_{index:02d}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        start += size


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_readme_excerpt_keeps_sharding_rows_and_columns(tmp_path, tiny_domain_model):
    books = tmp_path / "books_dataset"
    books.mkdir()
    write_shards(books, [17, 1, 23])

    files = get_all_files_paths_under(str(books))
    input_dataset = DocumentDataset.read_json(files, backend="pandas", add_filename=True)
    classifier = DomainClassifier(model=str(tiny_domain_model))
    labelled = classifier(dataset=input_dataset)
    everything = labelled.df.compute()
    lonely_label = everything.loc[everything["id"] == "s1-0", "domain_pred"].item()
    wanted = [label for label in everything["domain_pred"].value_counts().index if label != lonely_label][:2]

    result_dataset = DomainClassifier(model=str(tiny_domain_model), filter_by=wanted)(dataset=input_dataset)
    out = tmp_path / "games_and_sports"
    result_dataset.to_json(str(out), write_to_filename=True)

    written = sorted(p.name for p in out.iterdir())
    # shard_01's only row is filtered out: it still gets its (empty) output, so every input has one.
    assert written == ["shard_00.jsonl", "shard_01.jsonl", "shard_02.jsonl"]
    assert (out / "shard_01.jsonl").read_text() == ""
    for name in written:
        source = read_jsonl(books / name)
        labels = dict(zip(everything["id"], everything["domain_pred"], strict=True))
        expected = [dict(row, domain_pred=labels[row["id"]]) for row in source if labels[row["id"]] in wanted]
        assert read_jsonl(out / name) == expected  # all original columns, row order, no file_name column


def test_unfiltered_output_has_every_row_exactly_once(tmp_path, tiny_domain_model):
    write_shards(tmp_path, [5, 0, 8])
    files = get_all_files_paths_under(str(tmp_path), keep_extensions="jsonl")
    dataset = DocumentDataset.read_json(files, add_filename=True)
    result = DomainClassifier(model=str(tiny_domain_model))(dataset).df.compute()
    assert sorted(result["id"]) == sorted(f"s{s}-{i}" for s, n in ((0, 5), (2, 8)) for i in range(n))
    assert result["domain_pred"].isin(DOMAIN_LABELS).all()
    assert isinstance(result, pd.DataFrame)
