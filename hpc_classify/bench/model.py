"""The benchmark's DeBERTa-v3-base-sized classifier (random weights, built in memory) and its FLOP count."""

from __future__ import annotations

from typing import Any

import torch

from hpc_classify.models.head import ClassifierModel, backbone_config_from_dict, build_classifier_model
from hpc_classify.models.tiny import BASE_SIZED_BACKBONE


def build_base_sized_classifier(num_labels: int, seed: int = 0) -> ClassifierModel:
    """Deterministic in `seed`, so a Dask worker can rebuild the very same weights instead of receiving them."""
    torch.manual_seed(seed)
    return build_classifier_model(BASE_SIZED_BACKBONE, num_labels)


def hf_sequence_classifier(model: ClassifierModel) -> Any:
    """A transformers `DebertaV2ForSequenceClassification` with the same backbone weights (its pooler and
    classifier head are its own): what a user would load with AutoModelForSequenceClassification."""
    from transformers import DebertaV2ForSequenceClassification

    config = backbone_config_from_dict(BASE_SIZED_BACKBONE)
    config.num_labels = model.num_labels
    hf_model = DebertaV2ForSequenceClassification(config).eval()
    hf_model.deberta.load_state_dict(model.model.state_dict())
    return hf_model


def flops_per_token(mean_attended_length: float, config: dict[str, Any] | None = None) -> dict[str, float]:
    """Multiply-add FLOPs (2 per MAC) per token of one forward pass.

    Dense: Q, K, V, output projections and the two FFN matrices per layer. Attention: four L-long dot
    products per token and layer (content scores, c2p, p2c, probabilities x values), with L the mean
    length a token attends over (sum L_i^2 / sum L_i over the documents)."""
    config = config or BASE_SIZED_BACKBONE
    hidden, layers, ffn = config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]
    dense = layers * 2 * (4 * hidden * hidden + 2 * hidden * ffn)
    attention = layers * 2 * 4 * mean_attended_length * hidden
    return {"dense": float(dense), "attention": float(attention), "total": float(dense + attention)}
