"""Adapters between user models and the engine's contract: (input_ids, attention_mask) -> logits tensor."""

from __future__ import annotations

import torch


class SequenceClassifierLogits(torch.nn.Module):
    """Wraps a Hugging Face `...ForSequenceClassification`, whose forward returns an output object."""

    def __init__(self, inner: torch.nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits


def as_logits_module(model: torch.nn.Module) -> torch.nn.Module:
    """Hugging Face `PreTrainedModel`s with a classification head return objects; wrap those, keep the rest."""
    from transformers import PreTrainedModel

    return SequenceClassifierLogits(model) if isinstance(model, PreTrainedModel) else model
