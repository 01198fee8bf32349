"""The README's custom `DistributedDataClassifier` subclass (tests/user_package/mylab/toxicity.py) on a
local Hugging Face model, through the lazy Dask API."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from hpc_classify import DistributedDataClassifier, DocumentDataset
from hpc_classify.models.checkpoint import load_checkpoint_tokenizer, load_classifier_checkpoint
from hpc_classify.models.checkpoint_meta import labels_from_config


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
    kept_rows = [r for r, p in zip(rows, expected.argmax(1), strict=True) if p == 0]
    # A source file none of whose rows is kept gets no output file (as NeMo's write_to_filename).
    sources = {"a.jsonl": rows[:12], "b.jsonl": rows[12:]}
    assert sorted(p.name for p in out.iterdir()) == [
        name for name, source in sources.items() if any(r in kept_rows for r in source)
    ]
    written = [json.loads(line) for path in sorted(out.iterdir()) for line in path.read_text().splitlines()]
    assert [r["text"] for r in written] == [r["text"] for r in kept_rows]


class _PathModel(DistributedDataClassifier):
    """A user subclass that keeps its model directory as a pathlib.Path (the default identity read only
    str attributes, so two of these shared one cached engine and one fingerprint)."""

    def __init__(self, model_dir: Path, **kwargs):
        super().__init__(**kwargs)
        self.model_dir = model_dir

    def load_labels(self) -> list[str]:
        config = json.loads((self.model_dir / "config.json").read_text())
        return labels_from_config(config, source=str(self.model_dir))

    def load_tokenizer(self):
        return load_checkpoint_tokenizer(self.model_dir)

    def load_model(self, device):
        return load_classifier_checkpoint(str(self.model_dir), device=device).model


def test_subclasses_with_path_models_run_their_own_model_and_fingerprint_it(
    tmp_path, tiny_domain_model, tiny_quality_model
):
    from hpc_classify.models.tiny import DOMAIN_LABELS

    frame = pd.DataFrame({"text": ["football match goal", "stock market bank", "a recipe with flour"]})
    domain = _PathModel(Path(tiny_domain_model), device="cpu", autocast=False)
    quality = _PathModel(Path(tiny_quality_model), device="cpu", autocast=False)
    assert set(domain.predict_frame(frame)["pred"]) <= set(DOMAIN_LABELS)
    predicted = quality.predict_frame(frame)["pred"].tolist()  # not the domain engine cached first
    assert set(predicted) <= set(quality.labels) and not set(predicted) & set(DOMAIN_LABELS)

    # Same labels, another model directory (a retrained copy): a resume must refuse it.
    copy = tmp_path / "domain-v2"
    shutil.copytree(tiny_domain_model, copy)
    other = _PathModel(copy, device="cpu", autocast=False)
    assert other.labels == domain.labels
    assert other.model_identity() == {"model_dir": str(copy)}
    assert other.fingerprint() != domain.fingerprint()
    assert other.engine_key() != domain.engine_key() != quality.engine_key()


class _FixedOutputs(torch.nn.Module):
    def __init__(self, outputs: list[float]):
        super().__init__()
        self.register_buffer("outputs", torch.tensor(outputs))
        self.num_labels = len(outputs)

    def forward(self, input_ids, attention_mask):
        return self.outputs.expand(input_ids.shape[0], -1)


class _ThreeLabels(DistributedDataClassifier):
    def __init__(self, outputs: list[float], tokenizer_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.outputs = outputs
        self.tokenizer_dir = tokenizer_dir

    def load_labels(self):
        return ["A", "B", "C"]

    def load_tokenizer(self):
        return load_checkpoint_tokenizer(Path(self.tokenizer_dir))

    def load_model(self, device):
        return _FixedOutputs(self.outputs).to(device)


class _ThreeLabelsFromOneScore(_ThreeLabels):
    def columns_from_outputs(self, outputs, labels):
        return {self.pred_column: [labels[min(int(score), 2)] for score in outputs[:, 0]]}


def test_a_model_with_another_number_of_outputs_than_labels_is_refused_when_it_loads(tiny_domain_model):
    from hpc_classify.errors import CheckpointFormatError

    frame = pd.DataFrame({"text": ["a", "bb cc dd"]})
    # Fewer outputs never predicted "C"; more failed with an IndexError only where the argmax passed "C".
    for outputs in ([0.0, 5.0], [0.0, 0.0, 0.0, 0.0, 9.0], [9.0, 0.0, 0.0, 0.0, 0.0]):
        classifier = _ThreeLabels(outputs, str(tiny_domain_model), device="cpu", prob_column="p")
        with pytest.raises(
            CheckpointFormatError,
            match=rf"_ThreeLabels: the model has {len(outputs)} output\(s\) but there are 3",
        ):
            classifier.predict_frame(frame)
    fitting = _ThreeLabels([0.0, 0.0, 9.0], str(tiny_domain_model), device="cpu")
    assert fitting.predict_frame(frame)["pred"].tolist() == ["C", "C"]
    # A classifier with its own columns_from_outputs maps its outputs itself: not checked.
    scored = _ThreeLabelsFromOneScore([1.5], str(tiny_domain_model), device="cpu")
    assert scored.predict_frame(frame)["pred"].tolist() == ["B", "B"]


class _NemoOrdered(_PathModel):
    """Written the way NeMo's classifiers (and subclasses modelled on them) are: `text_field` and
    `prob_column` set on the instance before the base's __init__, which in NeMo takes neither."""

    def __init__(self, model_dir: Path, text_field: str, prob_column: str, text_field_given=None, **kwargs):
        self.text_field = text_field
        self.prob_column = prob_column
        super().__init__(
            model_dir, **kwargs, **({"text_field": text_field_given} if text_field_given else {})
        )


def test_a_nemo_ordered_subclass_keeps_the_text_field_and_prob_column_it_set_first(
    tmp_path, tiny_domain_model
):
    rows = [{"text": "ignore me " * (i + 1), "body": f"document {i} " + "words " * (i % 5)} for i in range(9)]
    (tmp_path / "a.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = DocumentDataset.read_json([str(tmp_path / "a.jsonl")])
    model = Path(tiny_domain_model)
    ordered = _NemoOrdered(model, "body", "my_prob", device="cpu", autocast=False)
    assert (ordered.text_field, ordered.prob_column) == ("body", "my_prob")
    labelled = ordered(dataset).df.compute()
    keyword = _PathModel(model, text_field="body", prob_column="my_prob", device="cpu", autocast=False)
    expected = keyword(dataset).df.compute()
    assert list(labelled.columns)[-2:] == ["my_prob", "pred"]
    pd.testing.assert_frame_equal(labelled, expected)
    on_text = _PathModel(model, prob_column="my_prob", device="cpu", autocast=False)(dataset).df.compute()
    assert on_text["my_prob"].tolist() != labelled["my_prob"].tolist()  # the column read matters here
    # Another text field given to the base still decides.
    assert _NemoOrdered(model, "body", "p", device="cpu", text_field_given="content").text_field == "content"
