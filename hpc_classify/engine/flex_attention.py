"""DeBERTa-v2/v3 disentangled attention without the [B, H, L, L] bias: FlexAttention with a `score_mod`.

Today's paths (attention.py eager, fused_attention.py compiled) compute the content->position (c2p) and
position->content (p2c) terms over the 2L-1 relative offsets, add them into one [B, H, L, L] bias, mask it
and hand it to scaled-dot-product attention. On a GPU that bias and the copies around it took about 60%
of the time (README, "On one GPU"). Here:

- the position products run on the model's relative-position *buckets*: [B, H, L, 2S] (2S = 512 for
  DeBERTa-v3, an aligned width) instead of [B, H, L, 2L-1] (an odd one);
- FlexAttention's `score_mod` adds them per tile inside the attention kernel, gathered by each (query,
  key) pair's bucket: score(i, j) + c2p[i, idx(i, j)] + p2c[j, idx(i, j)];
- padding is a block mask: fully padded key blocks are skipped, not computed and masked.

Both terms share one index: transformers gathers c2p at clamp(rel[i, j] + S) and p2c at
clamp(-rel[j, i] + S), and the bucketing is odd (rel[j, i] = -rel[i, j]), so idx(i, j) = clamp(rel[i, j]
+ S, 0, 2S - 1) for both. The math is otherwise attention.py's (scale sqrt(3 * head_dim)); real tokens'
outputs match transformers within fp32 1e-5 (tests/unit/test_flex_attention.py). Padded query rows see
no key and come out as zeros (transformers: a uniform average); they are never read.

FlexAttention is a compiled kernel (Triton on GPU, Inductor's C++ template on CPU): called eagerly it
materialises the scores (the tests' exact reference, slow), so the engine uses it only when it compiles
the backbone (engine/compiled.py; the choice is engine/attention_choice.py's).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.attention.flex_attention import create_block_mask, flex_attention

from hpc_classify.engine.fused_attention import bucket_projections, project_heads


def flex_disentangled_attention(
    module: nn.Module,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor,
    relative_pos: torch.Tensor,
    rel_embeddings: torch.Tensor,
) -> torch.Tensor:
    """Context [B, L, H*d] of a DeBERTa-v2 `DisentangledSelfAttention` (c2p + p2c, relative attention)
    for a [B, 1, L, L] `attention_mask` (nonzero: attend)."""
    batch, length, _ = hidden_states.shape
    query, key, value = project_heads(module, hidden_states)
    scale = (query.size(-1) * 3) ** 0.5
    pos_key, pos_query = bucket_projections(module, rel_embeddings, scale, query.dtype)
    c2p = torch.matmul(query, pos_key.transpose(-1, -2))  # [B, H, L, 2S]: query i . bucket b
    p2c = torch.matmul(key, pos_query.transpose(-1, -2))  # [B, H, L, 2S]: key j . bucket b
    span = module.pos_ebd_size
    bucket = torch.clamp(relative_pos[0].to(torch.long) + span, 0, span * 2 - 1)  # [L, L]
    allowed = attention_mask[:, 0].bool()  # [B, L, L]

    def add_position_terms(score, b, h, q, k):
        index = bucket[q, k]
        return score + c2p[b, h, q, index] + p2c[b, h, k, index]

    def attends(b, h, q, k):
        return allowed[b, q, k]

    block_mask = create_block_mask(attends, batch, None, length, length, device=hidden_states.device)
    context = flex_attention(
        query, key, value, score_mod=add_position_terms, block_mask=block_mask, scale=1.0 / scale
    )
    return context.transpose(1, 2).reshape(batch, length, -1)
