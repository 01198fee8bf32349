"""Length-sorted batches under a padded-token budget, padded only to their own longest sequence."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def plan_batches(
    lengths: Sequence[int], token_budget: int, *, max_documents: int | None = None, extra_tokens: int = 0
) -> list[np.ndarray]:
    """Group document indices into batches, longest first, so that each batch's padded size
    (documents x (its longest length + `extra_tokens`)) stays within `token_budget`, with at most
    `max_documents` documents each. `extra_tokens` is room a batch grows by (generated tokens).

    A document longer than the budget gets a batch of its own. Sorting by length keeps padding
    small; the caller puts results back in input order with the returned indices."""
    if token_budget < 1:
        raise ValueError(f"token_budget must be >= 1, not {token_budget}")
    lengths_array = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths_array, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    while start < len(order):
        longest = max(int(lengths_array[order[start]]) + extra_tokens, 1)
        size = max(1, token_budget // longest)  # sorted descending: the first one sets the width
        if max_documents is not None:
            size = min(size, max_documents)
        batches.append(order[start : start + size])
        start += size
    return batches


def pad_batch(token_ids: Sequence[Sequence[int]], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays [n, longest], right-padded with `pad_id`."""
    width = max((len(ids) for ids in token_ids), default=0)
    input_ids = np.full((len(token_ids), width), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(token_ids), width), dtype=np.int64)
    for row, ids in enumerate(token_ids):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
    return input_ids, attention_mask
