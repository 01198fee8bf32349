"""The README's custom `DistributedDataClassifier` subclass (tests/user_package/mylab/toxicity.py) on a
local Hugging Face model, through the lazy Dask API."""

from __future__ import annotations

import json

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hpc_classify import DocumentDataset


def test_custom_subclass_labels_filters_and_matches_its_model(
    tmp_path, tiny_toxicity_model, user_package_path
):
    from mylab.toxicity import ToxicityClassifier  # the README's example, as a user's importable module

    toxicity_model_dir = tiny_toxicity_model
    rows = [{"text": f"document number {i} " + "words " * (i % 7)} for i in range(30)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:12]))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[12:]))
    dataset = DocumentDataset.read_json(
        [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")], add_filename=True
    )

    classifier = ToxicityClassifier(str(toxicity_model_dir), prob_column="toxicity_prob", autocast=False)
    labelled = classifier(dataset).df.compute()
    assert labelled["text"].tolist() == [r["text"] for r in rows]

    model = AutoModelForSequenceClassification.from_pretrained(toxicity_model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(toxicity_model_dir)
    with torch.no_grad():
        expected = np.stack(
            [
                torch.softmax(model(**tokenizer(r["text"], return_tensors="pt")).logits, -1)[0].numpy()
                for r in rows
            ]
        )
    assert np.abs(np.array(labelled["toxicity_prob"].tolist()) - expected).max() <= 1e-5
    names = np.array(["non_toxic", "toxic"])
    assert labelled["toxicity_pred"].tolist() == names[expected.argmax(1)].tolist()

    kept = ToxicityClassifier(str(toxicity_model_dir), filter_by="non_toxic")(dataset)
    out = tmp_path / "clean"
    kept.to_json(str(out), write_to_filename=True)
    written = [
        json.loads(line) for name in ("a.jsonl", "b.jsonl") for line in (out / name).read_text().splitlines()
    ]
    assert [r["text"] for r in written] == [
        r["text"] for r, p in zip(rows, expected.argmax(1), strict=True) if p == 0
    ]
