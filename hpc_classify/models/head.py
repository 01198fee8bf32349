"""The classifier module of the public NVIDIA checkpoints (nvidia/domain-classifier and friends).

Their `model.safetensors` holds `model.*` (a DeBERTa-v2 backbone), `fc.weight` and `fc.bias`; the
prediction is `softmax(fc(dropout(last_hidden_state))[:, 0, :])`. This module reproduces that layout
exactly so that `load_state_dict(strict=True)` accepts the public weights as they are.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import DebertaV2Config, DebertaV2Model


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

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # The head reads only the first token: project just that one instead of the whole sequence.
        return self.fc(self.dropout(hidden[:, 0, :]))
