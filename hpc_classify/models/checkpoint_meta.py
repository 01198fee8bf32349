"""What the driver needs to know about a checkpoint without loading it: its labels and a hash of its
weights. No torch here: the driver computes the run fingerprint with these and stays light."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any

from hpc_classify.errors import CheckpointFormatError

WEIGHTS_FILE = "model.safetensors"
SHA256_BLOB = re.compile(r"[0-9a-f]{64}")


def labels_from_config(config: dict[str, Any], source: str) -> list[str]:
    """Label names in id order from `id2label` (keys are stringified ints in config.json)."""
    id2label = config.get("id2label")
    if not isinstance(id2label, dict) or not id2label:
        raise CheckpointFormatError(
            f"{source}: config.json has no id2label mapping",
            hint="a classifier's config.json must map class ids to label names, e.g. {'0': 'Adult', ...}",
        )
    try:
        ids = sorted((int(key), str(name)) for key, name in id2label.items())
    except (TypeError, ValueError):
        raise CheckpointFormatError(
            f"{source}: id2label keys must be integers, got {sorted(id2label)[:5]}"
        ) from None
    if [i for i, _ in ids] != list(range(len(ids))):
        raise CheckpointFormatError(
            f"{source}: id2label ids must be 0..{len(ids) - 1}, got {[i for i, _ in ids]}"
        )
    return [name for _, name in ids]


def check_regressor_config(config: dict[str, Any], source: str) -> None:
    """Refuse a config.json that does not describe a one-output sequence regressor (the FineWeb-Edu head: NeMo
    squeezes the single logit into the score). transformers builds one output per `id2label` entry, else
    `num_labels`, else 2."""
    id2label = config.get("id2label")
    outputs = len(id2label) if isinstance(id2label, dict) and id2label else config.get("num_labels", 2)
    if outputs != 1:
        raise CheckpointFormatError(
            f"{source}: config.json describes a model with {outputs!r} outputs (id2label, else num_labels, "
            "else 2); a score regressor has exactly one",
            hint='a FineWeb-Edu checkpoint\'s config.json has "id2label": {"0": "LABEL_0"} (or "num_labels": 1)',
        )


_hash_cache: dict[tuple[str, int, int], str] = {}
_hash_lock = threading.Lock()


# What a tokenizer is read from, in the layouts of the public checkpoints (DeBERTa's spm.model, BPE vocabularies).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "spm.model",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)


# A tokenizer is read from one of these; the other TOKENIZER_FILES only configure it. Without one,
# transformers 5 quietly builds an empty tokenizer from config.json's model_type (every word [UNK]).
VOCABULARY_PATTERNS = ("tokenizer.json", "*.model", "vocab.txt", "vocab.json")
TOKENIZER_FILES_HINT = (
    "a checkpoint needs its tokenizer: tokenizer.json, a sentencepiece model (*.model, e.g. spm.model) "
    "or vocabulary files (vocab.txt; vocab.json with merges.txt)"
)


def require_tokenizer_files(model_dir: str | Path) -> list[str]:
    """The vocabulary files in `model_dir`; none is a CheckpointFormatError naming the directory."""
    model_dir = Path(model_dir)
    found = sorted(
        {p.name for pattern in VOCABULARY_PATTERNS for p in model_dir.glob(pattern) if p.is_file()}
    )
    if not found:
        present = sorted(p.name for p in model_dir.iterdir()) if model_dir.is_dir() else []
        raise CheckpointFormatError(
            f"{model_dir}: no tokenizer files (the directory holds {', '.join(present) or 'nothing'})",
            hint=f"{TOKENIZER_FILES_HINT}; {missing_file_hint(model_dir)}",
        )
    return found


def tokenizer_hash(model_dir: str | Path) -> str:
    """One hash over the tokenizer files the checkpoint has (a new tokenizer_config.json alone changes the
    tokens, hence the outputs, without touching the weights); none at all is a CheckpointFormatError."""
    vocabularies = require_tokenizer_files(model_dir)
    present = [name for name in TOKENIZER_FILES if (Path(model_dir) / name).is_file()]
    if not set(vocabularies) & set(present):
        # Only a vocabulary under another name (a lone tokenizer.model): the tokenizer reads it, so it counts.
        # Beside a listed one (tokenizer.json) it is not read, and the hash stays what outputs were
        # fingerprinted with before.
        present += vocabularies
    digests = "".join(
        f"{name}:{file_hash(Path(model_dir) / name, f'{model_dir}: {name}')};" for name in present
    )
    return hashlib.sha256(digests.encode()).hexdigest()[:16]


def config_hash(model_dir: str | Path) -> str:
    """One hash over config.json and, where it names a local base model, that model's config: settings that
    leave the weights' shapes alone (max_position_embeddings sets the relative-position buckets,
    layer_norm_eps, hidden_act) still change the outputs. A hub base model is named in config.json."""
    config_path = Path(model_dir) / "config.json"
    parts = [file_hash(config_path, f"{model_dir}: config.json")]
    try:
        base = json.loads(config_path.read_text(encoding="utf-8")).get("base_model")
    except (OSError, ValueError, AttributeError):
        base = None  # the loader reports an unreadable config.json, with its remedy
    if isinstance(base, str) and base:
        base_path = Path(base).expanduser()
        base_config = base_path if base_path.is_file() else base_path / "config.json"
        if base_config.is_file():
            parts.append(file_hash(base_config, f"base model {base}"))
    return hashlib.sha256(";".join(parts).encode()).hexdigest()[:16]


def checkpoint_hash(model_dir: str | Path) -> str:
    """sha256 of model.safetensors, first 16 hex digits; cached by (path, size, mtime)."""
    return file_hash(Path(model_dir) / WEIGHTS_FILE, f"{model_dir}: {WEIGHTS_FILE}")


CHECKPOINT_FILES = (
    "config.json, the model weights (model.safetensors) and the tokenizer files (tokenizer.json, a "
    "sentencepiece *.model or vocab.txt)"
)


def in_hub_snapshot(path: str | Path) -> bool:
    """Whether `path` lies in a Hugging Face cache snapshot (`models--org--name/snapshots/<commit>/...`)."""
    parts = Path(path).parts
    return any(
        part == "snapshots" and parts[i - 1].startswith("models--") for i, part in enumerate(parts) if i
    )


def missing_file_hint(path: str | Path) -> str:
    """The remedy for a file missing from a checkpoint at `path`: fetch-models fills the hub cache's
    snapshots only; a local directory is the user's own, read as it is."""
    if in_hub_snapshot(path):
        return "re-run `hpc-classify fetch-models` (the cached snapshot is incomplete)"
    return (
        "copy what is missing from where the checkpoint came from, or pass the whole checkpoint's directory"
    )


def file_hash(path: str | Path, what: str) -> str:
    """sha256 of a file, first 16 hex digits; free for a Hugging Face cache blob (named by its sha256);
    cached by (path, size, mtime). A missing file is a CheckpointFormatError naming `what`."""
    try:
        real = Path(path).resolve(strict=True)
        stat = real.stat()
    except OSError:
        raise CheckpointFormatError(f"{what} is missing", hint=missing_file_hint(path)) from None
    key = (str(real), stat.st_size, stat.st_mtime_ns)
    with _hash_lock:
        if key in _hash_cache:
            return _hash_cache[key]
    if real.parent.name == "blobs" and SHA256_BLOB.fullmatch(real.name):
        # In the HF cache an LFS file's blob is named by its sha256: no need to read 700 MB.
        digest = real.name
    else:
        sha = hashlib.sha256()
        with open(real, "rb") as handle:
            while chunk := handle.read(1 << 22):
                sha.update(chunk)
        digest = sha.hexdigest()
    with _hash_lock:
        _hash_cache[key] = digest[:16]
    return digest[:16]
