"""The classifier module of the public NVIDIA checkpoints (nvidia/domain-classifier and friends).

Their `model.safetensors` holds `model.*` (a DeBERTa-v2 backbone), `fc.weight` and `fc.bias`; the
prediction is `softmax(fc(dropout(last_hidden_state))[:, 0, :])`. This module reproduces that layout
exactly so that `load_state_dict(strict=True)` accepts the public weights as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import DebertaV2Config, DebertaV2Model

from hpc_classify.errors import CheckpointFormatError

# Keys of a classifier's config.json that describe the head, not the backbone.
_HEAD_KEYS = frozenset({"base_model", "fc_dropout", "id2label", "label2id", "num_labels"})
SUPPORTED_MODEL_TYPES = frozenset({"deberta-v2"})


class ClassifierModel(nn.Module):
    """DeBERTa-v2 backbone + dropout + linear head on the first ([CLS]) token; returns logits."""

    def __init__(self, backbone_config: DebertaV2Config, num_labels: int, fc_dropout: float = 0.2):
        super().__init__()
        self.model = DebertaV2Model(backbone_config)
        self.dropout = nn.Dropout(fc_dropout)
        self.fc = nn.Linear(backbone_config.hidden_size, num_labels)

    @property
    def num_labels(self) -> int:
        return self.fc.out_features

    # The engine's two parts (hpc_classify.engine.backbone_head.BackboneAndHead).
    @property
    def backbone(self) -> DebertaV2Model:
        return self.model

    def head_logits(self, last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # The head reads only the first token: project just that one instead of the whole sequence.
        return self.fc(self.dropout(last_hidden_state[:, 0, :]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head_logits(hidden, attention_mask)


def backbone_config_from_dict(config: Mapping[str, Any], source: str = "backbone config") -> DebertaV2Config:
    """A DebertaV2Config from a config.json dict (a base model's, or a classifier's that carries the
    architecture inline); head-only keys are ignored. Unsupported or invalid -> CheckpointFormatError."""
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointFormatError(
            f"{source}: model_type {model_type!r} is not supported (expected one of {sorted(SUPPORTED_MODEL_TYPES)})",
            hint="the classifiers here are DeBERTa-v2/v3 models, e.g. base_model microsoft/deberta-v3-base",
        )
    fields = {k: v for k, v in config.items() if k not in _HEAD_KEYS and k != "model_type"}
    try:
        return DebertaV2Config(**fields)
    except Exception as error:  # noqa: BLE001 — transformers' strict dataclass raises several types
        raise CheckpointFormatError(f"{source}: invalid DeBERTa-v2 configuration ({error})") from None


def build_classifier_model(
    backbone_config: Mapping[str, Any] | DebertaV2Config, num_labels: int, *, fc_dropout: float = 0.2
) -> ClassifierModel:
    """A randomly initialised ClassifierModel (benchmarks, training the tiny test models), in eval mode."""
    if not isinstance(backbone_config, DebertaV2Config):
        backbone_config = backbone_config_from_dict(backbone_config)
    return ClassifierModel(backbone_config, num_labels, fc_dropout=fc_dropout).eval()
