"""Long texts are tokenized only as far as their kept tokens need (engine/tokenization.encode_prefixes), with
the ids of the whole text: FineWeb's classifiers cut no characters (NeMo's default), and a 30 MB document
tokenized whole took gigabytes of a worker's memory to keep 512 tokens."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from tokenizers import Tokenizer
from transformers import AutoTokenizer

from hpc_classify.engine.tokenization import CHARS_PER_TOKEN_TRIED, ChunkTokenizer

WORDS = "the river model data classify science market game health law music rain".split()


def _texts(seed: int) -> list[str]:
    """Long texts of the shapes that test a cut: plain words, whitespace runs of every kind, words far longer
    than the first prefix, text without any whitespace, and the short ones beside them."""
    rng = random.Random(seed)

    def words(n: int, gaps: tuple[str, ...] = (" ",)) -> str:
        return "".join(rng.choice(WORDS) + rng.choice(gaps) for _ in range(n))

    blob = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789+/") for _ in range(60_000))
    return [
        words(20_000),
        words(20_000, (" ", "  ", "\n", "\t", "\r\n", " \n\n ", "\u00a0", "\u3000", ", ", ". ")),
        " " * 5_000 + words(3_000),
        "\n".join(" " * 40 + words(3) for _ in range(3_000)),  # mostly whitespace: retried longer
        words(50) + blob + " " + words(2_000),  # a word longer than the first prefix, early
        words(3_000) + blob,  # ... and after enough tokens
        blob,
        "数据科学市场音乐健康" * 5_000,  # no whitespace at all
        words(5),
        "",
    ]


def _tokenizer(path: Path) -> object:
    return AutoTokenizer.from_pretrained(path)  # DeBERTa's SentencePiece BPE, FineWeb's BERT WordPiece


@pytest.mark.parametrize("max_tokens", [64, 512])
@pytest.mark.parametrize("model", ["tiny_domain_model", "tiny_fineweb_model"])
def test_the_ids_of_long_texts_are_those_of_the_whole_texts(
    model: str, max_tokens: int, request: pytest.FixtureRequest
) -> None:
    tokenizer = _tokenizer(request.getfixturevalue(model))
    whole = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    whole.no_padding()
    whole.enable_truncation(max_length=max_tokens)
    chunked = ChunkTokenizer(tokenizer, max_chars=None, max_tokens=max_tokens)
    for seed in range(3):
        texts = _texts(seed)
        assert chunked(texts) == [encoding.ids for encoding in whole.encode_batch(texts)]


class _Recording:
    """The tokenizer backend, recording the longest text it was handed."""

    def __init__(self, backend: Tokenizer):
        self.backend = backend
        self.longest = 0

    @property
    def pre_tokenizer(self) -> object:
        return self.backend.pre_tokenizer

    def encode_batch_fast(self, texts: list[str], add_special_tokens: bool) -> list:
        self.longest = max(self.longest, *(len(text) for text in texts))
        return self.backend.encode_batch_fast(texts, add_special_tokens=add_special_tokens)

    encode_batch = encode_batch_fast


def test_a_document_of_megabytes_is_tokenized_only_as_far_as_its_kept_tokens(
    tiny_fineweb_model: Path,
) -> None:
    chunked = ChunkTokenizer(_tokenizer(tiny_fineweb_model), max_chars=None, max_tokens=512)
    recording = chunked._backend = _Recording(chunked._backend)
    document = " ".join(random.Random(0).choice(WORDS) for _ in range(400_000))  # 2.3 MB

    ids = chunked([document, "a short one"])

    assert len(ids[0]) == 512 and len(document) > 2_000_000
    assert recording.longest <= 512 * CHARS_PER_TOKEN_TRIED  # not the 2.3 MB
