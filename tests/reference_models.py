"""Independent reference computations for the tests: plain transformers/torch, one document at a time,
as a model card would do it (no hpc_classify code). Importable from any test: tests/ is on sys.path
(the directory of the root conftest.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


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
