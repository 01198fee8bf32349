"""Texts -> token ids: cut to `max_chars` first, then the fast (Rust) tokenizer over the whole chunk."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 512


class ChunkTokenizer:
    """Turns a chunk of texts into unpadded token-id lists (with the model's special tokens). Two with
    the same `key` tokenize identically, so several models can share one tokenization.

    With a Hugging Face fast tokenizer it works on a private copy of the Rust backend, with truncation
    set once: the batch encode releases the GIL (so it overlaps the forward pass in a background thread)
    and the shared tokenizer object is never mutated. Other tokenizers go through their own `__call__`."""

    def __init__(
        self,
        tokenizer: Any,
        *,
        max_chars: int | None,
        max_tokens: int | None,
        position_limit: int | None = None,
    ):
        self.max_chars = max_chars
        # max_tokens None: NeMo Curator's rule (crossfit's max_seq_length): the tokenizer's model_max_length,
        # else the model configuration's max_position_embeddings (`position_limit`).
        self.max_tokens = max_tokens or _model_max_length(tokenizer) or position_limit or DEFAULT_MAX_TOKENS
        self.pad_id = tokenizer.pad_token_id if getattr(tokenizer, "pad_token_id", None) is not None else 0
        self._hf_tokenizer = tokenizer
        self._backend = _private_backend(tokenizer, self.max_tokens)
        if self._backend is None:
            logger.warning("%s is not a fast tokenizer: tokenization will be slow", type(tokenizer).__name__)
        self.key = _tokenization_key(self._backend, max_chars)

    def cut(self, texts: Sequence[str]) -> list[str]:
        if self.max_chars is None:
            return list(texts)
        limit = self.max_chars
        return [text if len(text) <= limit else text[:limit] for text in texts]

    def __call__(self, texts: Sequence[str]) -> list[list[int]]:
        texts = self.cut(texts)
        if not texts:
            return []
        if self._backend is not None:
            encode = getattr(self._backend, "encode_batch_fast", self._backend.encode_batch)
            return [encoding.ids for encoding in encode(texts, add_special_tokens=True)]
        encoded = self._hf_tokenizer(
            texts,
            truncation=True,
            max_length=self.max_tokens,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return list(encoded["input_ids"])


def _tokenization_key(backend: Any, max_chars: int | None) -> str | None:
    """Equal keys give equal token ids for every text: the whole backend (vocabulary, normalizer, special
    tokens, truncation) and the character cut. None for a slow tokenizer (never shared)."""
    if backend is None:
        return None
    return hashlib.sha256(f"{max_chars}\0{backend.to_str()}".encode()).hexdigest()[:16]


def _model_max_length(tokenizer: Any) -> int | None:
    value = getattr(tokenizer, "model_max_length", None)
    # transformers uses a huge sentinel (int(1e30)) when the checkpoint does not say; crossfit (NeMo)
    # takes anything over 1e5 for it.
    return int(value) if isinstance(value, int) and 0 < value <= 100_000 else None


def _private_backend(tokenizer: Any, max_tokens: int) -> Any | None:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return None
    from tokenizers import Tokenizer

    private = Tokenizer.from_str(backend.to_str())
    private.no_padding()
    private.enable_truncation(max_length=max_tokens)
    return private
