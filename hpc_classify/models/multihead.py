"""nvidia/prompt-task-and-complexity-classifier's model: a DeBERTa-v3 backbone, masked mean pooling and one
linear head per target (NeMo Curator's `CustomHFDeberta`).

Checkpoint layout: `config.json` (`base_model`, `targets`, `target_sizes`, `task_type_map`, `weights_map`,
`divisor_map`, ...), `model.safetensors` with `backbone.*` and `head_<i>.fc.{weight,bias}` (heads in the
order of `target_sizes`), tokenizer files. As for the other checkpoints, only the base model's config is read.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import DebertaV2Config, DebertaV2Model

from hpc_classify.errors import CheckpointFormatError
from hpc_classify.models.checkpoint import (
    backbone_config_for,
    check_tokenizer_fits,
    load_checkpoint_tokenizer,
    materialize,
    read_weights,
)
from hpc_classify.models.checkpoint_meta import WEIGHTS_FILE
from hpc_classify.models.hub import read_json_file, resolve_model_dir

logger = logging.getLogger(__name__)

REQUIRED_KEYS = ("targets", "target_sizes", "task_type_map", "weights_map", "divisor_map")
MULTIHEAD_LAYOUT = "backbone.* (DeBERTa-v2 backbone), head_<i>.fc.weight, head_<i>.fc.bias"


class MulticlassHead(nn.Module):
    def __init__(self, input_size: int, num_classes: int):
        super().__init__()
        self.fc = nn.Linear(input_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class MultiHeadDeberta(nn.Module):
    """Backbone + masked mean pooling + heads; `forward` returns every head's logits side by side
    ([batch, sum(head_sizes)], heads in order), the engine's one-tensor contract. The engine runs it in its
    two parts (`backbone`, `head_logits`), so that the pooling and every head stay fp32 under bf16 or int8."""

    def __init__(self, backbone_config: DebertaV2Config, head_sizes: list[int]):
        super().__init__()
        self.backbone = DebertaV2Model(backbone_config)
        self.head_sizes = list(head_sizes)
        for index, size in enumerate(self.head_sizes):
            self.add_module(f"head_{index}", MulticlassHead(backbone_config.hidden_size, size))

    @property
    def num_labels(self) -> int:
        return sum(self.head_sizes)

    def head_logits(self, last_hidden_state: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(last_hidden_state.dtype)
        pooled = (last_hidden_state * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.cat([getattr(self, f"head_{i}")(pooled) for i in range(len(self.head_sizes))], dim=-1)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head_logits(hidden, attention_mask)


@dataclass
class LoadedMultiHead:
    model: MultiHeadDeberta
    config: dict[str, Any]
    model_dir: Path
    tokenizer: Any


def read_multihead_config(model_dir: Path, source: str) -> dict[str, Any]:
    """config.json with the keys the heads and the post-processing need, or a CheckpointFormatError."""
    config = read_json_file(model_dir / "config.json", f"classifier {source}")
    missing = [key for key in REQUIRED_KEYS if key not in config]
    if missing:
        raise CheckpointFormatError(
            f"{source}: config.json lacks {', '.join(missing)}",
            hint="a prompt task/complexity checkpoint's config.json names its targets, head sizes and weights",
        )
    return config


def load_multihead_checkpoint(
    model: str | os.PathLike[str], revision: str | None = None, device: str | torch.device = "cpu"
) -> LoadedMultiHead:
    model = os.fspath(model)
    model_dir = resolve_model_dir(model, revision=revision)
    config = read_multihead_config(model_dir, model)
    backbone = backbone_config_for(config, source=model)
    head_sizes = [int(size) for size in config["target_sizes"].values()]
    state = read_weights(model_dir)
    net = materialize(
        lambda: MultiHeadDeberta(backbone, head_sizes), state, model_dir / WEIGHTS_FILE, MULTIHEAD_LAYOUT
    )
    tokenizer = load_checkpoint_tokenizer(model_dir)
    check_tokenizer_fits(tokenizer, net.backbone.get_input_embeddings().num_embeddings, model_dir)
    logger.info("loaded %s (%d heads) on %s", model, len(head_sizes), device)
    return LoadedMultiHead(net.to(device=device).eval(), config, model_dir, tokenizer)
