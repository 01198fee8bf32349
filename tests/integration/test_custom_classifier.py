"""The README's custom `DistributedDataClassifier` subclass, verbatim in spirit, on a local HF model."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
)

from hpc_classify import DistributedDataClassifier, DocumentDataset


class ToxicityClassifier(DistributedDataClassifier):
    default_pred_column = "toxicity_pred"

    def __init__(self, model_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.model_dir = model_dir

    def load_labels(self) -> list[str]:
        config = AutoConfig.from_pretrained(self.model_dir)
        return [config.id2label[i] for i in range(config.num_labels)]

    def load_tokenizer(self):
        return AutoTokenizer.from_pretrained(self.model_dir)

    def load_model(self, device):
        return AutoModelForSequenceClassification.from_pretrained(self.model_dir).to(device).eval()


@pytest.fixture(scope="module")
def toxicity_model_dir(tmp_path_factory, tiny_domain_model):
    out = tmp_path_factory.mktemp("toxicity-model")
    for name in tiny_domain_model.iterdir():
        if "token" in name.name or name.suffix == ".model":
            shutil.copy(name, out / name.name)
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(out)
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_buckets=64,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        position_biased_input=False,
        id2label={0: "non_toxic", 1: "toxic"},
        label2id={"non_toxic": 0, "toxic": 1},
    )
    DebertaV2ForSequenceClassification(config).save_pretrained(out)
    return out


def test_custom_subclass_labels_filters_and_matches_its_model(tmp_path, toxicity_model_dir):
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
