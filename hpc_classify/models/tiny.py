"""Tiny classifiers built locally, in the exact public checkpoint layout, for tests, the demo and benchmarks.

`build_tiny_checkpoint` trains a tokenizer with the `tokenizers` library and a two-layer DeBERTa-v2
(v3-style relative attention) for a few dozen Adam steps on `synthetic_corpus`, so predictions differ
from document to document and mostly follow the topic words. Nothing is downloaded. The labels are
meaningless outside the synthetic corpus: the weights are a demonstration.
"""

from __future__ import annotations

import json
import logging
import os
import random
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file

from hpc_classify.models.head import ClassifierModel, backbone_config_from_dict, build_classifier_model

__all__ = [
    "BASE_SIZED_BACKBONE",
    "DOMAIN_LABELS",
    "QUALITY_LABELS",
    "build_classifier_model",
    "build_tiny_checkpoint",
    "random_base_sized_checkpoint",
    "synthetic_corpus",
    "topic_vocabulary",
]

logger = logging.getLogger(__name__)

# nvidia/domain-classifier's id2label, in id order.
DOMAIN_LABELS: list[str] = [
    "Adult", "Arts_and_Entertainment", "Autos_and_Vehicles", "Beauty_and_Fitness", "Books_and_Literature",
    "Business_and_Industrial", "Computers_and_Electronics", "Finance", "Food_and_Drink", "Games", "Health",
    "Hobbies_and_Leisure", "Home_and_Garden", "Internet_and_Telecom", "Jobs_and_Education",
    "Law_and_Government", "News", "Online_Communities", "People_and_Society", "Pets_and_Animals",
    "Real_Estate", "Science", "Sensitive_Subjects", "Shopping", "Sports", "Travel_and_Transportation",
]  # fmt: skip
# nvidia/quality-classifier-deberta's id2label, in id order (0 High, 1 Low, 2 Medium).
QUALITY_LABELS: list[str] = ["High", "Low", "Medium"]

SPECIAL_TOKENS = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]  # ids 0..4, as in DeBERTa-v3 ([MASK] aside)

# microsoft/deberta-v3-base's architecture (its config.json), for base-sized benchmarks.
BASE_SIZED_BACKBONE: dict[str, Any] = {
    "model_type": "deberta-v2",
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 0,
    "initializer_range": 0.02,
    "layer_norm_eps": 1e-7,
    "relative_attention": True,
    "max_relative_positions": -1,
    "position_buckets": 256,
    "norm_rel_ebd": "layer_norm",
    "share_att_key": True,
    "pos_att_type": ["p2c", "c2p"],
    "position_biased_input": False,
    "pad_token_id": 0,
    "vocab_size": 128100,
}

_FILLER = (
    "the of and to in a is that for it as with was on be by this are from at or an have not which "
    "but all were when we there can been has more their if will one about would so some them other "
    "into time only new also these two may then do first any like now such our over most even made "
    "after well where much before through back good very way our years still while here day part"
).split()
_SYLLABLES = "ka lo mi ven tor sa ri pel dun qua zo fi ber lan gu tre mon sil ko vad ru nex pra hol".split()
_TOPIC_WORDS_PER_LABEL = 12


def topic_vocabulary(labels: Sequence[str]) -> dict[str, list[str]]:
    """Per-label topic words (the label's own name parts plus invented words), unique across labels.

    Depends on the label list only, so held-out documents of another seed share the vocabulary."""
    rng = random.Random(zlib.crc32("\x1f".join(labels).encode()))
    taken = set(_FILLER)
    vocab: dict[str, list[str]] = {}
    for label in labels:
        words = [p.lower() for p in label.split("_") if p.lower() not in taken and p.lower() != "and"]
        taken.update(words)
        while len(words) < _TOPIC_WORDS_PER_LABEL:
            word = "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 3)))
            if word not in taken:
                taken.add(word)
                words.append(word)
        vocab[label] = words
    return vocab


def synthetic_corpus(
    n: int, labels: Sequence[str], seed: int = 0, *, topic_share: float = 0.3
) -> tuple[list[str], list[int]]:
    """`n` documents and their label ids: topic words of the label mixed with shared filler words,
    lognormal lengths (median ~27 words, a few hundred at most), sentences with capitals and periods."""
    rng = random.Random(seed)
    vocab = topic_vocabulary(labels)
    texts: list[str] = []
    label_ids: list[int] = []
    for _ in range(n):
        label_id = rng.randrange(len(labels))
        topic = vocab[labels[label_id]]
        length = max(4, min(300, int(rng.lognormvariate(3.3, 0.6))))
        words = [
            rng.choice(topic) if rng.random() < topic_share else rng.choice(_FILLER) for _ in range(length)
        ]
        sentences, start = [], 0
        while start < len(words):
            end = start + rng.randint(6, 14)
            chunk = words[start:end]
            sentences.append(" ".join([chunk[0].capitalize(), *chunk[1:]]) + ".")
            start = end
        texts.append(" ".join(sentences))
        label_ids.append(label_id)
    return texts, label_ids


def train_tokenizer(texts: Sequence[str], vocab_size: int, model_max_length: int) -> Any:
    """A byte-pair tokenizer over sentencepiece-style "▁" pieces, wrapped as a transformers fast tokenizer
    that adds [CLS] ... [SEP]. BPE, not Unigram (DeBERTa-v3's kind): the Unigram trainer's output varies
    between runs (hash-ordered scores), BPE's does not, and builds must be reproducible."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(), pre_tokenizers.Punctuation()])
    tok.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    tok.train_from_iterator(texts, trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return as_fast_tokenizer(tok, model_max_length)


def as_fast_tokenizer(tokenizer_object: Any, model_max_length: int) -> Any:
    """The transformers fast tokenizer around a `tokenizers.Tokenizer` with our special tokens."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer_object,
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        unk_token="[UNK]",
        mask_token="[MASK]",
        model_max_length=model_max_length,
    )


def tiny_backbone_config(
    vocab_size: int, *, hidden: int = 64, layers: int = 2, heads: int = 2
) -> dict[str, Any]:
    """A few-layer DeBERTa-v2 configuration with v3-style relative attention."""
    return {
        **BASE_SIZED_BACKBONE,
        "hidden_size": hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "intermediate_size": 4 * hidden,
        "max_position_embeddings": 1024,
        "vocab_size": vocab_size,
    }


def _train(
    net: ClassifierModel, tokenizer: Any, texts: list[str], label_ids: list[int], *, steps: int, seed: int
):
    batch_size, max_length = 32, 64  # short sequences: the topic shows in the first words, and it is fast
    enc = tokenizer(texts, truncation=True, max_length=max_length, padding="max_length", return_tensors="pt")
    targets = torch.tensor(label_ids)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    net.train()
    for _ in range(steps):
        idx = torch.randint(len(texts), (batch_size,), generator=generator)
        logits = net(enc["input_ids"][idx], enc["attention_mask"][idx])
        loss = torch.nn.functional.cross_entropy(logits, targets[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    logger.debug("tiny model trained: %d steps, last loss %.3f", steps, loss.item())
    net.eval()


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Train on one intra-op thread, restoring the setting after: the ops of a tiny model are too small
    to share (on a busy machine, spinning OpenMP threads made a 2 s build take 30 s), and one thread
    gives the same float reductions, hence the same weights, on every machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _write_json(path: Path, obj: dict[str, Any]) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _save_public_layout(
    out_dir: Path,
    net: ClassifierModel,
    tokenizer: Any,
    labels: Sequence[str],
    backbone: dict[str, Any],
    as_: str,
) -> None:
    """config.json, tokenizer files, then model.safetensors last (its presence means the directory is complete)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    head = {
        "fc_dropout": 0.2,
        "id2label": {str(i): name for i, name in enumerate(labels)},
        "label2id": {name: i for i, name in enumerate(labels)},
    }
    if as_ == "dir":
        base_dir = out_dir.parent / f"{out_dir.name}-base"
        base_dir.mkdir(parents=True, exist_ok=True)
        _write_json(base_dir / "config.json", backbone)
        config = {"base_model": str(base_dir.resolve()), **head}
    elif as_ == "inline":
        config = {**backbone, **head}
    else:
        raise ValueError(f"base_model_as must be 'dir' or 'inline', got {as_!r}")
    _write_json(out_dir / "config.json", config)
    tokenizer.save_pretrained(str(out_dir))
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    tmp = out_dir / f".model.safetensors.tmp-{os.getpid()}"
    save_file(state, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, out_dir / "model.safetensors")


def build_tiny_checkpoint(
    out_dir: str | Path,
    labels: Sequence[str],
    *,
    seed: int = 0,
    steps: int = 40,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 2,
    vocab_size: int = 2000,
    base_model_as: str = "dir",
) -> Path:
    """Train and save a tiny classifier in the public layout; returns `out_dir`. Deterministic per seed.

    base_model_as="dir": config.json names a sibling directory `<out_dir>-base` holding only the
    backbone's config.json (like `base_model: microsoft/deberta-v3-base`); "inline": config.json
    carries the architecture itself (`model_type` and the rest)."""
    if base_model_as not in ("dir", "inline"):
        raise ValueError(f"base_model_as must be 'dir' or 'inline', got {base_model_as!r}")
    labels = list(labels)
    out_dir = Path(out_dir)
    texts, label_ids = synthetic_corpus(max(256, 25 * len(labels)), labels, seed=seed)
    tokenizer = train_tokenizer(texts, vocab_size, model_max_length=1024)
    backbone = tiny_backbone_config(len(tokenizer), hidden=hidden, layers=layers, heads=heads)
    with one_torch_thread():
        torch.manual_seed(seed)  # the initial weights (torch's global generator is the only way into nn.init)
        net = ClassifierModel(backbone_config_from_dict(backbone), len(labels), fc_dropout=0.2)
        _train(net, tokenizer, texts, label_ids, steps=steps, seed=seed)
    _save_public_layout(out_dir, net, tokenizer, labels, backbone, base_model_as)
    logger.info("tiny checkpoint (%d labels, vocab %d) written to %s", len(labels), len(tokenizer), out_dir)
    return out_dir


def random_base_sized_checkpoint(out_dir: str | Path, labels: Sequence[str], *, seed: int = 0) -> Path:
    """A DeBERTa-v3-base-sized classifier with random weights (about 740 MB) in the public layout, for
    benchmarks of loading and throughput; the tokenizer is a tiny trained one. For in-memory benchmarks,
    `build_classifier_model(BASE_SIZED_BACKBONE, num_labels)` skips the disk."""
    labels = list(labels)
    out_dir = Path(out_dir)
    texts, _ = synthetic_corpus(512, labels, seed=seed)
    tokenizer = train_tokenizer(texts, 2000, model_max_length=512)
    torch.manual_seed(seed)
    net = build_classifier_model(BASE_SIZED_BACKBONE, len(labels))
    _save_public_layout(out_dir, net, tokenizer, labels, BASE_SIZED_BACKBONE, "inline")
    return out_dir
