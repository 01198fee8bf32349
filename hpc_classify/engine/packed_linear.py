"""bf16 Linear layers on CPU with their weights packed once in oneDNN's blocked layout, GELU fused.

`nn.Linear` in bf16 reorders its weight into oneDNN's blocked layout on every call, and DeBERTa's FFN then
reads its 3072-wide output again for the GELU. Packing each weight once (what Inductor's weight freezing
does for compiled CPU graphs, `torch.ops.mkldnn._reorder_linear_weight`) and running the activation as the
matmul's post-op (`_linear_pointwise`) made the engine 4-6% faster in bf16 on an AVX-512 BF16 CPU
(docs/attention.md). The outputs are the same oneDNN matmul's: exact equality without the fusion, bf16
rounding of the GELU's input with it.

Only eager bf16 engines on CPU pack (engine.py decides), and only where oneDNN can reorder bf16 weights
(`onednn_reorders_bf16`: AVX-512 or AVX-NE-CONVERT; on an AVX2-only CPU the reorder raises, and bf16 there runs
plain `nn.Linear`, emulated). Weights and state-dict keys are unchanged, and a weight changed in place is
packed again before its next use.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F
from transformers.activations import GELUActivation

from hpc_classify.engine.precision import onednn_reorders_bf16

logger = logging.getLogger(__name__)

# The row count oneDNN is told to expect when choosing the packed layout: about one token budget's batch.
PACKING_ROWS = 4096


class PackedLinear(nn.Module):
    """y = activation(x @ weight.T + bias) with the weight packed once; `activation` "none" or "gelu" (erf)."""

    def __init__(self, linear: nn.Linear, activation: str = "none"):
        super().__init__()
        if activation not in ("none", "gelu"):
            raise ValueError(f"activation must be none or gelu, not {activation!r}")
        self.weight = linear.weight
        self.bias = linear.bias
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.activation = activation
        self._packed: tuple[int, int, torch.Tensor] | None = None  # (weight id, version, packed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight
        if self._packed is None or self._packed[:2] != (id(weight), weight._version):
            packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), PACKING_ROWS)
            self._packed = (id(weight), weight._version, packed)
        x = x.to(weight.dtype).contiguous()  # oneDNN reads the input densely
        algorithm = "none" if self.activation == "gelu" else ""  # the erf GELU, as transformers' "gelu"
        return torch.ops.mkldnn._linear_pointwise(
            x, self._packed[2], self.bias, self.activation, [], algorithm
        )

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, activation={self.activation}"
        )


def pack_linear_layers(model: nn.Module) -> int:
    """Replace every bf16 `nn.Linear` in `model` by a `PackedLinear`, fusing the GELU of DeBERTa-style
    intermediate blocks (a `dense` Linear followed by an exact-GELU `intermediate_act_fn`); returns how many.
    Linear layers in other dtypes (the fp32 head) are left alone, and nothing is packed on a CPU whose oneDNN
    cannot reorder bf16 weights (module docstring)."""
    if not onednn_reorders_bf16():
        logger.debug("bf16 Linear layers not packed: oneDNN has no bf16 weight reorder on this CPU")
        return 0
    count = 0
    for module in list(model.modules()):
        act = getattr(module, "intermediate_act_fn", None)
        dense = getattr(module, "dense", None)
        if _is_bf16_linear(dense) and _is_exact_gelu(act):
            module.dense = PackedLinear(dense, "gelu")
            module.intermediate_act_fn = nn.Identity()
            count += 1
        for name, child in list(module.named_children()):
            if _is_bf16_linear(child):
                setattr(module, name, PackedLinear(child))
                count += 1
    if count:
        logger.debug("%d bf16 Linear layers packed for oneDNN", count)
    return count


def _is_bf16_linear(module: object) -> bool:
    return type(module) is nn.Linear and module.weight.dtype == torch.bfloat16


def _is_exact_gelu(module: object) -> bool:
    if isinstance(module, GELUActivation):
        return getattr(module, "act", None) is F.gelu  # erf, oneDNN's gelu_erf (not the Python variant)
    return type(module) is nn.GELU and module.approximate == "none"
