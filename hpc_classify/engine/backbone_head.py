"""What the engine needs of a model it runs in two parts: `BackboneAndHead`.

A model with a `backbone` and a `head_logits` method (such as `models.head.ClassifierModel`, the NVIDIA
checkpoints' module) is run as: the backbone in the compute dtype (bf16 where native), compiled where asked; then the
head in fp32, eager, with its Linear layers (those outside the backbone) never converted or quantized, so
that near-tied logits are not decided by bf16 or int8 rounding. Any other module is run whole.
The engine depends on this protocol only, never on a models-layer class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn


@runtime_checkable
class BackboneAndHead(Protocol):
    @property
    def backbone(self) -> nn.Module:
        """(input_ids=, attention_mask=) -> an output with `last_hidden_state` [batch, tokens, hidden]."""
        ...

    def head_logits(self, last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The head: logits [batch, outputs] from the backbone's last hidden state (pooling included; the
        mask [batch, tokens] tells a mean pooling which tokens are real).
        (Not named `head`: a module with `backbone` and `head` submodules of its own is run whole.)"""
        ...


def head_linears(model: nn.Module) -> list[nn.Linear]:
    """The Linear layers of a BackboneAndHead's head (those outside its backbone), in module order; none for
    a model run whole."""
    if not isinstance(model, BackboneAndHead):
        return []
    inside = set(model.backbone.modules())
    return [m for m in model.modules() if isinstance(m, nn.Linear) and m not in inside]
