"""Length-sorted token-budget batching and per-batch padding."""

from __future__ import annotations

import numpy as np
import pytest

from hpc_classify.engine.batching import pad_batch, plan_batches


def test_every_document_once_longest_first_within_budget() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 512, size=500).tolist()
    batches = plan_batches(lengths, token_budget=2048)

    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(500))
    in_batch_order = [lengths[i] for i in flat]
    assert in_batch_order == sorted(lengths, reverse=True)
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 2048


def test_batches_are_as_large_as_the_budget_allows() -> None:
    assert [b.tolist() for b in plan_batches([10, 10, 10, 10, 10], token_budget=20)] == [[0, 1], [2, 3], [4]]
    assert [b.tolist() for b in plan_batches([3, 9, 5], token_budget=10)] == [[1], [2, 0]]


def test_a_document_longer_than_the_budget_gets_its_own_batch() -> None:
    assert [b.tolist() for b in plan_batches([100, 4, 4], token_budget=16)] == [[0], [1, 2]]


def test_ties_keep_input_order_and_empty_input() -> None:
    assert [b.tolist() for b in plan_batches([5, 5, 5], token_budget=100)] == [[0, 1, 2]]
    assert plan_batches([], token_budget=100) == []
    with pytest.raises(ValueError, match="token_budget"):
        plan_batches([1], token_budget=0)


def test_pad_batch_pads_to_the_batch_longest_only() -> None:
    input_ids, attention_mask = pad_batch([[1, 7, 2], [1, 2], [1, 5, 6, 7, 2]], pad_id=0)

    assert input_ids.dtype == np.int64 and attention_mask.dtype == np.int64
    assert input_ids.tolist() == [[1, 7, 2, 0, 0], [1, 2, 0, 0, 0], [1, 5, 6, 7, 2]]
    assert attention_mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
