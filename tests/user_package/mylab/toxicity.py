"""The README's custom classifier: a Hugging Face `AutoModelForSequenceClassification` directory."""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from hpc_classify import DistributedDataClassifier


class ToxicityClassifier(DistributedDataClassifier):
    default_pred_column = "toxicity_pred"

    def __init__(self, model_dir: str, **kwargs):
        super().__init__(**kwargs)
        self.model_dir = (
            model_dir  # reported by model_identity(): part of the engine cache key and fingerprint
        )

    def load_labels(self) -> list[str]:  # cheap: config only
        config = AutoConfig.from_pretrained(self.model_dir)
        return [config.id2label[i] for i in range(config.num_labels)]

    def load_tokenizer(self):
        return AutoTokenizer.from_pretrained(self.model_dir)

    def load_model(self, device):  # any module mapping (input_ids, attention_mask) to logits
        return AutoModelForSequenceClassification.from_pretrained(self.model_dir).to(device).eval()


class NotAClassifier:
    """For the test that an import path must name a DistributedDataClassifier."""
