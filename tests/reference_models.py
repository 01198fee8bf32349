"""Independent reference computations for the tests: plain transformers/torch, one document at a time,
as a model card would do it (no hpc_classify code). Importable from any test: tests/ is on sys.path
(the directory of the root conftest.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file


def sequence_classifier_probabilities(
    model_dir: Path, texts: list[str], *, max_chars: int = 2000, max_tokens: int = 512
) -> np.ndarray:
    """Softmax probabilities of a Hugging Face `AutoModelForSequenceClassification` directory, fp32."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text[:max_chars], truncation=True, max_length=max_tokens, return_tensors="pt")
            rows.append(torch.softmax(model(**encoded).logits, -1)[0].numpy())
    return np.stack(rows)


def nvidia_checkpoint_probabilities(model_dir, texts, max_chars, max_tokens):
    """Plain transformers, one document at a time, no package code: the reference for exactness."""
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

    config = json.loads((model_dir / "config.json").read_text())
    backbone = config if "model_type" in config else None
    if backbone is None:
        base = config["base_model"]
        backbone = json.loads((Path(base) / "config.json").read_text())
    backbone = {
        k: v for k, v in backbone.items() if k not in ("id2label", "label2id", "base_model", "fc_dropout")
    }
    model = DebertaV2Model(DebertaV2Config(**backbone)).eval()
    weights = load_file(str(model_dir / "model.safetensors"))
    model.load_state_dict({k[len("model.") :]: v for k, v in weights.items() if k.startswith("model.")})
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text[:max_chars], truncation=True, max_length=max_tokens, return_tensors="pt")
            hidden = model(**{k: encoded[k] for k in ("input_ids", "attention_mask")}).last_hidden_state
            logits = hidden[:, 0, :] @ weights["fc.weight"].T + weights["fc.bias"]
            rows.append(torch.softmax(logits, dim=-1)[0].numpy())
    return np.stack(rows)
