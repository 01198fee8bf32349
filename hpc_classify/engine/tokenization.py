"""Texts -> token ids: cut to `max_chars` first, then the fast (Rust) tokenizer over the whole chunk, each
long text only as far as its first tokens need (`encode_prefixes`)."""

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
            return encode_prefixes(self._backend, texts, self.max_tokens)
        encoded = self._hf_tokenizer(
            texts,
            truncation=True,
            max_length=self.max_tokens,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )
        return list(encoded["input_ids"])


# The first prefix of a long text the tokenizer sees: this many characters per token kept (English runs at
# about 4.5; a prefix with too few tokens is retried twice as long).
CHARS_PER_TOKEN_TRIED = 24
_CUT_BEFORE = frozenset(" \t\n\r")  # whitespace to every tokenizer's pre-tokenizer


def encode_prefixes(backend: Any, texts: Sequence[str], max_tokens: int) -> list[list[int]]:
    """The truncated token ids of `texts`, as `backend.encode_batch` gives them for the whole texts, with each
    long text tokenized only as far as its first `max_tokens` tokens need. Without a character cut (FineWeb's
    classifiers: max_chars None, as NeMo's) a 30 MB document was tokenized whole, about 150 bytes of memory
    per character (a 300 MB one: tens of GB), to keep 512 tokens.

    A prefix ends before whitespace, where a pre-tokenizer that splits on it ends a word (BERT's, Metaspace
    with WhitespaceSplit, byte-level BPE's): its tokens are the first tokens of the whole text. It is taken
    once it overflows twice (a whole chunk of `max_tokens` tokens beyond those kept: a margin), else tried
    twice as long, up to the whole text. A tokenizer without a pre-tokenizer, whose model sees the whole
    text as one word, always gets whole texts."""
    encode = getattr(backend, "encode_batch_fast", backend.encode_batch)
    if backend.pre_tokenizer is None:
        return [encoding.ids for encoding in encode(list(texts), add_special_tokens=True)]
    ids: list[list[int] | None] = [None] * len(texts)
    window = max_tokens * CHARS_PER_TOKEN_TRIED
    todo = list(range(len(texts)))
    while todo:
        prefixes = [_prefix(texts[i], window) for i in todo]
        encodings = encode(prefixes, add_special_tokens=True)
        retry = []
        for i, prefix, encoding in zip(todo, prefixes, encodings, strict=True):
            if len(prefix) == len(texts[i]) or len(encoding.overflowing) >= 2:
                ids[i] = encoding.ids
            else:
                retry.append(i)
        todo, window = retry, window * 2
    return ids  # type: ignore[return-value]  (every entry set)


def _prefix(text: str, window: int) -> str:
    """`text` cut before its last whitespace within `window` characters (or its first one after, for a word
    longer than that: never inside a word), else whole."""
    if len(text) <= window:
        return text
    end = max(text.rfind(c, 1, window + 1) for c in _CUT_BEFORE)
    if end <= 0:
        after = [i for i in (text.find(c, window) for c in _CUT_BEFORE) if i >= 0]
        end = min(after, default=len(text))
    return text[:end]


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
