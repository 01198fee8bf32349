"""The benchmark's seeded synthetic corpus and a tokenizer trained on it (nothing downloaded).

Lengths are lognormal (median about 2,000 characters, like web documents); the words follow a Zipf law
over invented syllable words, so a BPE tokenizer trained on a sample gives English-like ~4-5 characters
per token: frequent words are one token, rare ones several."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MEDIAN_CHARS = 2000
LENGTH_SIGMA = 0.8
VOCABULARY_WORDS = 30000
TOKENIZER_VOCAB = 16000
_SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou", "er", "an")]


def _vocabulary(rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    words: set[str] = set()
    while len(words) < VOCABULARY_WORDS:
        size = int(rng.choice([1, 2, 2, 3, 3, 4]))
        words.add("".join(rng.choice(_SYLLABLES, size=size)))
    vocabulary = sorted(
        sorted(words), key=lambda word: len(word) + rng.normal(0, 2.5)
    )  # short words: frequent
    ranks = np.arange(1, len(vocabulary) + 1)
    weights = 1.0 / ranks**1.07
    return vocabulary, weights / weights.sum()


def synthetic_documents(count: int, seed: int = 0) -> list[str]:
    """`count` documents with lognormal lengths (median MEDIAN_CHARS characters), deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    vocabulary, probabilities = _vocabulary(rng)
    lengths = rng.lognormal(math.log(MEDIAN_CHARS), LENGTH_SIGMA, size=count).astype(int)
    documents = []
    for target in lengths:
        target = max(int(target), 20)
        words = rng.choice(len(vocabulary), size=target // 5 + 8, p=probabilities)
        sentences, text_length, position = [], 0, 0
        while text_length < target and position < len(words):
            size = int(rng.integers(6, 18))
            chunk = [vocabulary[i] for i in words[position : position + size]]
            position += size
            sentence = " ".join([chunk[0].capitalize(), *chunk[1:]]) + rng.choice(
                [".", ".", ".", ",", "?", "!"]
            )
            sentences.append(sentence)
            text_length += len(sentence) + 1
        documents.append(" ".join(sentences)[:target])
    return documents


def tokenizer_training_text(seed: int = 0, words: int = 400_000) -> list[str]:
    """Lines of words drawn from the corpus's Zipf law: what a tokenizer would have seen in pre-training."""
    rng = np.random.default_rng(seed)
    vocabulary, probabilities = _vocabulary(rng)
    drawn = rng.choice(len(vocabulary), size=words, p=probabilities)
    return [" ".join(vocabulary[i] for i in drawn[start : start + 200]) for start in range(0, words, 200)]


def train_tokenizer(texts: list[str], vocab_size: int = TOKENIZER_VOCAB, model_max_length: int = 512) -> Any:
    """The tiny models' BPE fast tokenizer (Metaspace pieces like DeBERTa-v3's), with a larger vocabulary."""
    from hpc_classify.models.tiny import train_tokenizer as train_tiny_tokenizer

    return train_tiny_tokenizer(texts, vocab_size, model_max_length)


def wrap_tokenizer(tokenizer_json: str, model_max_length: int = 512) -> Any:
    """The transformers fast tokenizer for a `tokenizers` JSON string (how the tokenizer travels to
    Dask workers: the wrapper object itself holds locks and does not pickle)."""
    from tokenizers import Tokenizer

    from hpc_classify.models.tiny import as_fast_tokenizer

    return as_fast_tokenizer(Tokenizer.from_str(tokenizer_json), model_max_length)
