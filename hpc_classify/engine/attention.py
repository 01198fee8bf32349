"""A faster, exact DeBERTa-v2 disentangled attention for inference.

transformers' `DisentangledSelfAttention` projects all 2*S relative-position embeddings on every call,
repeats them per batch row and gathers the content->position (c2p) and position->content (p2c) terms
with [B*H, L, L] int64 indices (materialised: `gather` copies its expanded index), then transposes.
On CPU those gathers and copies cost about as much as all the dense layers. This version computes the
same numbers with:

- the position projections cached per layer (weights only; the cache is checked against the values);
- c2p/p2c as one matmul each against the 2L-1 relative offsets (their buckets picked from the model's own
  `relative_pos`), read back as [L, L] through a strided view (Transformer-XL "skew"): no gather at all;
- one additive bias (c2p + p2c, pre-scaled, masked) passed to `scaled_dot_product_attention`;
- on CPU, a few documents per attention call (temporaries below glibc's mmap threshold, cache-resident),
  each cut to its longest document when the batch is right-padded.

The math follows transformers 5.x `modeling_deberta_v2.py`: scale = sqrt(head_dim * 3) for c2p+p2c,
c2p index clamp(rel[q, k] + S, 0, 2S-1), p2c index clamp(-rel[k, q] + S, 0, 2S-1), masked scores set to the
dtype's minimum. Real tokens' outputs match within fp32 1e-5; padded positions' outputs are unspecified.
"""

from __future__ import annotations

import logging

import torch
from torch import nn
from torch.nn import functional as F
from transformers.models.deberta_v2.modeling_deberta_v2 import DebertaV2Encoder, DisentangledSelfAttention

from hpc_classify.engine.flex_attention import flex_disentangled_attention
from hpc_classify.engine.fused_attention import fused_attention
from hpc_classify.engine.tiled_attention import tiled_attend

logger = logging.getLogger(__name__)

# Largest c2p/p2c temporary per attention call on CPU: below glibc's 32 MiB mmap threshold, so freed
# blocks are reused instead of mmapped and page-faulted again in every layer.
CPU_CHUNK_BYTES = 16 * 2**20
KERNELS = ("bias", "flex", "tiled")


class FastDisentangledSelfAttention(DisentangledSelfAttention):
    """Drop-in inference replacement; falls back to the original for training or unusual calls."""

    _pos_cache: tuple | None = None
    # "bias": the [L, L] bias built per chunk (below; fused_attention.py when compiled). "flex": under
    # torch.compile, flex_attention.py (no bias); eager it would materialise the scores, so eager runs "bias".
    # "tiled": on CPU and eager, tiled_attention.py (the position terms added per tile in C++, no bias).
    attention_kernel: str = "bias"

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        output_attentions: bool = False,
        query_states: torch.Tensor | None = None,
        relative_pos: torch.Tensor | None = None,
        rel_embeddings: torch.Tensor | None = None,
    ):
        if (
            self.training
            or output_attentions
            or query_states is not None
            or not self.relative_attention
            or relative_pos is None
            or rel_embeddings is None
            or attention_mask.dim() != 4
            or relative_pos.dim() != 3
            or set(self.pos_att_type) != {"c2p", "p2c"}
        ):
            return super().forward(
                hidden_states, attention_mask, output_attentions, query_states, relative_pos, rel_embeddings
            )
        if torch.compiler.is_compiling():  # traced by torch.compile: the same math, tensor ops only
            attend = flex_disentangled_attention if self.attention_kernel == "flex" else fused_attention
            return (attend(self, hidden_states, attention_mask, relative_pos, rel_embeddings), None)
        batch, length, _ = hidden_states.shape
        device_type = hidden_states.device.type
        if torch.is_autocast_enabled(device_type) and hidden_states.dtype == torch.float32:
            # One cast for Q, K and V: autocast would cast the same fp32 states once per projection.
            hidden_states = hidden_states.to(torch.get_autocast_dtype(device_type))
        heads = self.num_attention_heads
        query = self._heads(self.query_proj(hidden_states), batch, length)
        key = self._heads(self.key_proj(hidden_states), batch, length)
        value = self._heads(self.value_proj(hidden_states), batch, length)
        scale = (query.size(-1) * 3) ** 0.5  # 1 + c2p + p2c, as in the original

        blocked, lengths = _mask_layout(attention_mask, need_lengths=device_type == "cpu")
        attend = tiled_attend if self.attention_kernel == "tiled" and device_type == "cpu" else _attend
        rows = _rows_per_chunk(query, length)
        if rows >= batch:
            pos_key, pos_query = self._relative_projections(
                relative_pos, rel_embeddings, length, scale, query.dtype
            )
            context = attend(query, key, value, blocked, pos_key, pos_query, scale)
            return (context.transpose(1, 2).reshape(batch, length, -1), None)
        # CPU: a few documents at a time keeps the [B, H, L, 2L-1] temporaries small enough to be reused
        # from the heap and to stay in cache, instead of being mmapped and page-faulted for every layer.
        # With right-padded documents each chunk is also cut to its own longest document: the padding
        # beyond it is masked for every valid query anyway, and padded positions' outputs are unused.
        context = query.new_zeros(batch, length, heads, query.size(-1))
        for start in range(0, batch, rows):
            part = slice(start, start + rows)
            width = max(lengths[part]) if lengths is not None else length
            chunk_blocked = blocked[part, :, :width, :width]
            if lengths is not None and min(lengths[part]) == width:
                chunk_blocked = None  # no padding in this chunk: nothing to mask
            pos_key, pos_query = self._relative_projections(
                relative_pos, rel_embeddings, width, scale, query.dtype
            )
            chunk = attend(
                query[part, :, :width],
                key[part, :, :width],
                value[part, :, :width],
                chunk_blocked,
                pos_key,
                pos_query,
                scale,
            )
            context[part, :width] = chunk.transpose(1, 2)
        return (context.view(batch, length, -1), None)

    def _relative_projections(
        self,
        relative_pos: torch.Tensor,
        rel_embeddings: torch.Tensor,
        length: int,
        scale: float,
        dtype: torch.dtype,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[H, 2L-1, d] position keys/queries per relative offset, divided by `scale`.

        Column c stands for the offset r = (L-1) - c between query and key (c2p: r = i - j, p2c: r = j - i);
        its bucket is read from the model's own `relative_pos` (row L-1 gives r >= 0, row 0 gives r <= 0)."""
        span = self.pos_ebd_size
        rel = relative_pos[0].to(torch.long)
        rel_by_offset = torch.cat([rel[length - 1, :length], rel[0, 1:length]])
        c2p_index = torch.clamp(rel_by_offset + span, 0, span * 2 - 1)
        p2c_index = torch.clamp(-rel_by_offset + span, 0, span * 2 - 1)
        pos_key, pos_query = self._position_projections(rel_embeddings, dtype, scale)
        return pos_key.index_select(1, c2p_index), pos_query.index_select(1, p2c_index)

    def _heads(self, x: torch.Tensor, batch: int, length: int) -> torch.Tensor:
        return x.view(batch, length, self.num_attention_heads, -1).transpose(1, 2)

    def _position_projections(
        self, rel_embeddings: torch.Tensor, dtype: torch.dtype, scale: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[H, 2S, d] projections of the relative embeddings for keys (c2p) and queries (p2c), divided by
        `scale`, cached: they depend only on weights. The cache is keyed by the projection weights'
        identity/version and the embeddings (the same object from the caching encoder, else compared by
        value), so a reloaded, converted or edited model recomputes."""
        key_proj = self.key_proj if self.share_att_key else self.pos_key_proj
        query_proj = self.query_proj if self.share_att_key else self.pos_query_proj
        stamp = (dtype, scale, *_weights_stamp(key_proj), *_weights_stamp(query_proj))
        cached = self._pos_cache
        if cached is not None and cached[0] == stamp:
            if cached[1] is rel_embeddings or (
                cached[2].dtype == rel_embeddings.dtype
                and cached[2].shape == rel_embeddings.shape
                and torch.equal(cached[2], rel_embeddings)
            ):
                return cached[3], cached[4]
        rel = rel_embeddings[: self.pos_ebd_size * 2]
        size = rel.size(0)
        pos_key = key_proj(rel).view(size, self.num_attention_heads, -1).transpose(0, 1).to(dtype) / scale
        pos_query = query_proj(rel).view(size, self.num_attention_heads, -1).transpose(0, 1).to(dtype) / scale
        if not torch.is_grad_enabled():
            self._pos_cache = (stamp, rel_embeddings, rel_embeddings.clone(), pos_key, pos_query)
        return pos_key, pos_query


def _weights_stamp(projection: nn.Module) -> tuple:
    """What identifies a projection's current weights: each tensor's identity, version, dtype and device
    for an `nn.Linear`; for a dynamically quantized Linear (int8 precision), whose `weight` is a method,
    its packed weights object, which `set_weight_bias` (the only way to change them) replaces."""
    weight = getattr(projection, "weight", None)
    if isinstance(weight, torch.Tensor):
        tensors = (weight, getattr(projection, "bias", None))
        return tuple((id(t), t._version, t.dtype, t.device) for t in tensors if t is not None)
    packed = getattr(getattr(projection, "_packed_params", None), "_packed_params", None)
    if packed is None:  # an unknown module: no safe cache key, so a key that never matches twice
        return (object(),)
    # The object itself too (it has no ==): kept alive by the cache, its id cannot be reused meanwhile.
    return ((id(projection), id(packed), packed),)


class CachedRelEmbeddingEncoder(DebertaV2Encoder):
    """Returns the same (LayerNorm-ed) relative embeddings object while its weights are unchanged, so the
    attention layers recognise them by identity instead of comparing values in every layer and pass."""

    _rel_cache: tuple | None = None

    def get_rel_embedding(self):
        # Traced by torch.compile: no identity cache (a graph cannot check it); fused_attention needs none.
        if torch.is_grad_enabled() or not self.relative_attention or torch.compiler.is_compiling():
            return super().get_rel_embedding()
        params = [self.rel_embeddings.weight]
        if "layer_norm" in self.norm_rel_ebd:
            params += [self.LayerNorm.weight, self.LayerNorm.bias]
        device_type = params[0].device.type
        autocast = torch.is_autocast_enabled(device_type) and torch.get_autocast_dtype(device_type)
        stamp = (autocast, *((id(p), p._version, p.dtype, p.device) for p in params))
        if self._rel_cache is None or self._rel_cache[0] != stamp:
            self._rel_cache = (stamp, super().get_rel_embedding())
        return self._rel_cache[1]


def _attend(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    blocked: torch.Tensor | None,
    pos_key: torch.Tensor,
    pos_query: torch.Tensor,
    scale: float,
) -> torch.Tensor:
    """softmax(q.k / scale + c2p + p2c, blocked -> dtype min) @ v for [B, H, L, d] inputs; the
    position projections are already divided by the scale."""
    length = query.size(-2)
    # Offsets on the columns (c = j - i + L - 1), then a strided view reads them back as [i, j].
    c2p = torch.matmul(query, pos_key.transpose(-1, -2))  # [B, H, L, 2L-1]
    p2c = torch.matmul(key, pos_query.transpose(-1, -2))  # [B, H, L(key), 2L-1]
    bias = torch.add(_skew(c2p, length, transpose=False), _skew(p2c, length, transpose=True))
    del c2p, p2c
    if blocked is not None:
        bias.masked_fill_(blocked, torch.finfo(bias.dtype).min)
    return F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=1.0 / scale)


MASK_LAYOUT = "_hpc_mask_layout"  # (~mask, lengths, lengths computed), on the mask tensor itself


def _mask_layout(
    attention_mask: torch.Tensor, *, need_lengths: bool
) -> tuple[torch.Tensor, list[int] | None]:
    """(~mask as bool, per-document lengths when the mask is right padding), once per forward pass.

    Every layer receives the same mask object, so the result is cached on it, as an attribute: it lives as
    long as that forward's mask (a cache beside it held the last [B, 1, L, L] mask, ~300 MB on a GPU, through
    out-of-memory retries and after the engine returned). Lengths are None unless the
    [B, 1, L, L] mask is exactly the outer product of a prefix of ones per document (what the encoder
    builds from a right-padded 2-D mask): only then may a chunk be cut to its longest document."""
    cached = getattr(attention_mask, MASK_LAYOUT, None)
    if cached is not None and (cached[2] or not need_lengths):
        return cached[0], cached[1]
    allowed = attention_mask.bool()
    lengths = _right_padded_lengths(allowed) if need_lengths else None
    blocked = ~allowed
    setattr(attention_mask, MASK_LAYOUT, (blocked, lengths, need_lengths))
    return blocked, lengths


def _right_padded_lengths(allowed: torch.Tensor) -> list[int] | None:
    pairs = allowed[:, 0]  # [B, L, L]
    keys = pairs.any(dim=1)  # [B, L]: key j is visible to some query
    lengths = keys.sum(dim=-1)
    prefix = torch.arange(keys.size(-1), device=keys.device) < lengths[:, None]
    if not torch.equal(keys, prefix) or not torch.equal(pairs, keys[:, :, None] & keys[:, None, :]):
        return None
    return lengths.tolist()


def _rows_per_chunk(query: torch.Tensor, length: int) -> int:
    if query.device.type != "cpu":
        return query.size(0)
    per_row = query.size(1) * length * (2 * length - 1) * query.element_size()
    return max(1, CPU_CHUNK_BYTES // per_row)


def _skew(scores: torch.Tensor, length: int, *, transpose: bool) -> torch.Tensor:
    """View [B, H, L, 2L-1] scores over relative offsets as [B, H, L, L] (Transformer-XL style, no copy).

    Column c of row r holds offset c - (L - 1) relative to r. Without transpose, [i, j] reads row i at
    column j - i + L - 1 (strides 2L-2, 1); with transpose, row j at column i - j + L - 1 (strides 1, 2L-2)."""
    if not scores.is_contiguous():
        scores = scores.contiguous()
    batch, heads = scores.shape[:2]
    stride_row = 2 * length - 2
    inner = (stride_row, 1) if not transpose else (1, stride_row)
    return scores.as_strided(
        (batch, heads, length, length),
        (scores.stride(0), scores.stride(1), *inner),
        scores.storage_offset() + length - 1,
    )


def accelerate_attention(model: nn.Module, kernel: str = "bias") -> int:
    """Swap every `DisentangledSelfAttention` in `model` for the fast exact version (and DeBERTa-v2 encoders
    for the one caching its relative embeddings); returns how many attention layers were swapped.
    `kernel` ("bias", "flex" or "tiled", see `FastDisentangledSelfAttention.attention_kernel`) is set on
    every layer.

    Idempotent; weights and state-dict keys are unchanged (only the classes, hence `forward`, change)."""
    if kernel not in KERNELS:
        raise ValueError(f"attention kernel must be one of {', '.join(KERNELS)}, not {kernel!r}")
    count = 0
    for module in model.modules():
        if isinstance(module, DisentangledSelfAttention):
            if not isinstance(module, FastDisentangledSelfAttention):
                module.__class__ = FastDisentangledSelfAttention
                count += 1
            module.attention_kernel = kernel
        elif type(module) is DebertaV2Encoder:
            module.__class__ = CachedRelEmbeddingEncoder
    if count:
        logger.debug("fast disentangled attention installed in %d layers", count)
    return count


def restore_attention(model: nn.Module) -> int:
    """Undo `accelerate_attention` (used by tests and benchmarks to compare both paths)."""
    count = 0
    for module in model.modules():
        if isinstance(module, FastDisentangledSelfAttention):
            module.__class__ = DisentangledSelfAttention
            module.__dict__.pop("_pos_cache", None)
            module.__dict__.pop("attention_kernel", None)
            count += 1
        elif isinstance(module, CachedRelEmbeddingEncoder):
            module.__class__ = DebertaV2Encoder
            module.__dict__.pop("_rel_cache", None)
    return count
