"""The disentangled attention as one traceable function, for the compiled path (`hpc_classify.engine.compiled`).

`FastDisentangledSelfAttention` (attention.py) is fast in eager mode thanks to Python-side work that a
graph compiler cannot trace: caches keyed by object identity, a per-chunk loop cut to each chunk's
longest document (its lengths read back to Python), a strided view at a storage offset. Under
`torch.compile` it calls this function instead, which computes the same numbers with tensor operations
only, so that Inductor can fuse the non-GEMM work around the matrix products: the head transposes, the
c2p/p2c skew, their sum, the padding mask and the casts become a few generated loops, with no [L, L]
temporary written and read back by separate passes. The matrix products (projections, c2p, p2c) and
`scaled_dot_product_attention` stay library calls (oneDNN/MKL on CPU, cuBLAS/flash kernels on GPU).

The math is attention.py's (transformers 5.x `modeling_deberta_v2.py`): scale sqrt(3 * head_dim), c2p index
clamp(rel[q, k] + S, 0, 2S-1), p2c index clamp(-rel[k, q] + S, 0, 2S-1), masked scores at the dtype's min.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def fused_attention(
    module: nn.Module,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor,
    relative_pos: torch.Tensor,
    rel_embeddings: torch.Tensor,
) -> torch.Tensor:
    """Context [B, L, H*d] of a DeBERTa-v2 `DisentangledSelfAttention` (c2p + p2c, relative attention)
    for a [B, 1, L, L] `attention_mask`; padded positions' outputs are unspecified, as in attention.py."""
    batch, length, _ = hidden_states.shape
    query, key, value = project_heads(module, hidden_states)
    scale = (query.size(-1) * 3) ** 0.5
    pos_key, pos_query = _relative_projections(
        module, relative_pos, rel_embeddings, length, scale, query.dtype
    )
    c2p = torch.matmul(query, pos_key.transpose(-1, -2))  # [B, H, L, 2L-1], offsets on the columns
    p2c = torch.matmul(key, pos_query.transpose(-1, -2))
    bias = skew(c2p, length) + skew(p2c, length).transpose(-1, -2)
    bias = bias.masked_fill(attention_mask == 0, torch.finfo(bias.dtype).min)
    context = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=1.0 / scale)
    return context.transpose(1, 2).reshape(batch, length, -1)


def project_heads(
    module: nn.Module, hidden_states: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Query, key and value [B, H, L, d] of a DisentangledSelfAttention for [B, L, H*d] hidden states."""
    batch, length, _ = hidden_states.shape
    device_type = hidden_states.device.type
    if torch.is_autocast_enabled(device_type):
        # One cast for Q, K and V (autocast would cast once per projection); fused into the producer.
        hidden_states = hidden_states.to(torch.get_autocast_dtype(device_type))
    heads = module.num_attention_heads
    return tuple(
        projection(hidden_states).view(batch, length, heads, -1).transpose(1, 2)
        for projection in (module.query_proj, module.key_proj, module.value_proj)
    )


def _relative_projections(
    module: nn.Module,
    relative_pos: torch.Tensor,
    rel_embeddings: torch.Tensor,
    length: int,
    scale: float,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """[H, 2L-1, d] position keys (c2p) and queries (p2c) per relative offset (L-1) - c, divided by `scale`.

    Computed in the graph (2S rows per layer: about 1% of a batch's FLOPs at S = 256 and 4k tokens)
    rather than cached: a cache keyed by object identity is what a compiled graph cannot check."""
    span = module.pos_ebd_size
    rel = relative_pos[0].to(torch.long)  # [L, L]
    # Rows L-1 and 0 as rel[-1] and rel[0]: indexing with `length - 1` would make the graph specialise
    # on (and recompile for) every length.
    rel_by_offset = torch.cat([rel[-1], rel[0, 1:]])
    c2p_index = torch.clamp(rel_by_offset + span, 0, span * 2 - 1)
    p2c_index = torch.clamp(-rel_by_offset + span, 0, span * 2 - 1)
    pos_key, pos_query = bucket_projections(module, rel_embeddings, scale, dtype)
    return pos_key.index_select(1, c2p_index), pos_query.index_select(1, p2c_index)


def bucket_projections(
    module: nn.Module, rel_embeddings: torch.Tensor, scale: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """[H, 2S, d] position keys (c2p) and queries (p2c), one row per relative-position bucket, divided by
    `scale`. Computed in the graph (2S rows per layer, weights only): no identity cache to check there."""
    key_proj = module.key_proj if module.share_att_key else module.pos_key_proj
    query_proj = module.query_proj if module.share_att_key else module.pos_query_proj
    rel = rel_embeddings[: module.pos_ebd_size * 2]
    heads = module.num_attention_heads
    pos_key = key_proj(rel).view(rel.size(0), heads, -1).transpose(0, 1).to(dtype) / scale
    pos_query = query_proj(rel).view(rel.size(0), heads, -1).transpose(0, 1).to(dtype) / scale
    return pos_key, pos_query


def skew(scores: torch.Tensor, length: int) -> torch.Tensor:
    """[B, H, L, 2L-1] scores over relative offsets read as [B, H, L, L]: out[i, j] = scores[i, j - i + L - 1].

    Transformer-XL's shift written with reshapes and slices only (attention.py's `as_strided` at a storage
    offset is not traceable): in the flattened rows, element (i, j) sits at (L - 1) + i * (2L - 2) + j."""
    if length == 1:  # one offset, 0: already [i, j] (and 2L - 2 = 0 would make an empty view)
        return scores
    batch, heads = scores.shape[:2]
    flat = scores.reshape(batch, heads, length * (2 * length - 1))
    rows = flat[..., length - 1 : length - 1 + length * (2 * length - 2)]
    return rows.reshape(batch, heads, length, 2 * length - 2)[..., :length]
