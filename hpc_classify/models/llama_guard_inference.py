"""Running a loaded LlamaGuard as NeMo Curator 0.7.1 does: Aegis decodes greedily (`max_new_tokens=100,
pad_token_id=0`) and strips the prompt from the decoded text by character count; instruction data guard takes
the prefill's last-layer hidden state at the last position and runs the guard net on it. Batches are the
engine's length-sorted token-budget batches; one that runs out of GPU memory is split in two.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from hpc_classify.models.llama_guard import MAX_LENGTH

if TYPE_CHECKING:
    import numpy as np
    import torch

    from hpc_classify.models.llama_guard_loading import LoadedLlamaGuard

logger = logging.getLogger(__name__)

AEGIS_MAX_NEW_TOKENS = 100
PAD_TOKEN_ID = 0  # generate(pad_token_id=0) as NeMo; LlamaGuard's <unk>


def _batches(
    ids: list[list[int]], max_documents: int, token_budget: int, extra_tokens: int = 0
) -> list[list[int]]:
    """The engine's length-sorted token-budget batches, capped at `max_documents`, as index lists."""
    from hpc_classify.engine.batching import plan_batches

    lengths = [len(row) for row in ids]
    planned = plan_batches(lengths, token_budget, max_documents=max_documents, extra_tokens=extra_tokens)
    return [batch.tolist() for batch in planned]


def _left_padded(ids: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        mask[row, width - len(tokens) :] = 1
    return input_ids.to(device), mask.to(device)


def _run_batches(batches: list[list[int]], run_one: Any, device: Any, results: dict[int, Any]) -> None:
    """run_one(indices) -> values, one per index; a batch that runs out of GPU memory is split in two."""
    from hpc_classify.engine.device import is_out_of_memory, release_cached_memory

    pending = list(batches)
    while pending:
        batch = pending.pop(0)
        try:
            values = run_one(batch)
        except Exception as error:
            if not is_out_of_memory(error) or len(batch) == 1:
                raise
            release_cached_memory(device)
            half = len(batch) // 2
            logger.warning("out of memory on %d documents: retrying in halves", len(batch))
            pending[:0] = [batch[:half], batch[half:]]
            continue
        results.update(zip(batch, values, strict=True))


def generate_responses(
    loaded: LoadedLlamaGuard, prompts: Sequence[str], *, max_documents: int, token_budget: int
) -> list[str]:
    """NeMo's Aegis generation: each prompt's greedy continuation (<= 100 new tokens), decoded with the
    prompt (special tokens skipped) and cut after the prompt's character count."""
    import torch

    tokenizer = loaded.tokenizer
    ids = tokenizer(list(prompts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    batches = _batches(ids, max_documents, token_budget, extra_tokens=AEGIS_MAX_NEW_TOKENS)

    def run_one(batch: list[int]) -> list[str]:
        input_ids, mask = _left_padded([ids[i] for i in batch], tokenizer.pad_token_id, loaded.device)
        with loaded.lock, torch.inference_mode():
            out = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=AEGIS_MAX_NEW_TOKENS,
                pad_token_id=PAD_TOKEN_ID,
                do_sample=False,
            )
        texts = tokenizer.batch_decode(out.cpu().tolist(), skip_special_tokens=True)
        return [text[len(prompts[i]) :] for text, i in zip(texts, batch, strict=True)]

    results: dict[int, str] = {}
    _run_batches(batches, run_one, loaded.device, results)
    return [results[i] for i in range(len(prompts))]


def last_hidden_states(
    loaded: LoadedLlamaGuard, texts: Sequence[str], *, max_documents: int, token_budget: int
) -> np.ndarray:
    """The prefill's last-layer hidden state (after the final norm) at each document's last token,
    float32 [N, hidden]: NeMo's `generate(...).hidden_states[0][32][:, -1, :]` without the LM head."""
    import numpy as np
    import torch

    tokenizer = loaded.tokenizer
    ids = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    batches = _batches(ids, max_documents, token_budget)
    decoder = loaded.model.get_base_model().get_decoder()  # LlamaModel, LoRA layers injected

    def run_one(batch: list[int]) -> list[np.ndarray]:
        input_ids, mask = _left_padded([ids[i] for i in batch], tokenizer.pad_token_id, loaded.device)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as generate() derives them
        with loaded.lock, torch.inference_mode():
            hidden = decoder(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False
            ).last_hidden_state[:, -1, :]
        return list(hidden.float().cpu().numpy())

    results: dict[int, np.ndarray] = {}
    _run_batches(batches, run_one, loaded.device, results)
    if not texts:
        return np.zeros((0, loaded.hidden_size), dtype=np.float32)
    return np.stack([results[i] for i in range(len(texts))]).astype(np.float32)


def guard_scores(net: Any, embeddings: np.ndarray, device: torch.device) -> np.ndarray:
    """The guard net's poisoning scores (float32 [N]) of last-layer embeddings."""
    import torch

    with torch.inference_mode():
        scores = net(torch.from_numpy(embeddings).to(device=device, dtype=torch.float32))
    return scores.float().cpu().numpy().reshape(-1)
