"""Loading a classifier checkpoint in the public NVIDIA layout.

Layout: `config.json` (`base_model`, `fc_dropout`, `id2label`/`label2id`; sometimes the architecture
itself), `model.safetensors` (`model.*`, `fc.weight`, `fc.bias`), tokenizer files. The backbone is
built from the base model's *configuration* only; its weights are never read, the classifier's
safetensors carry them all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from transformers import DebertaV2Config

from hpc_classify.errors import CheckpointFormatError
from hpc_classify.models.checkpoint_meta import (
    WEIGHTS_FILE,
    check_regressor_config,
    checkpoint_hash,
    labels_from_config,
    missing_file_hint,
    require_tokenizer_files,
)
from hpc_classify.models.head import ClassifierModel, backbone_config_from_dict
from hpc_classify.models.held_warnings import TRANSFORMERS_LOAD_LOGGER, held_warnings
from hpc_classify.models.hub import read_json_file, resolve_base_config, resolve_model_dir

__all__ = [
    "LoadedCheckpoint",
    "WEIGHTS_FILE",
    "backbone_config_for",
    "check_tokenizer_fits",
    "checkpoint_hash",
    "labels_from_config",
    "load_checkpoint_tokenizer",
    "load_classifier_checkpoint",
    "load_sequence_regressor",
    "resolve_model_dir",
]

logger = logging.getLogger(__name__)

DEFAULT_FC_DROPOUT = 0.2
# Checkpoints saved with transformers < 4.31 also hold this buffer (persistent then); it is always
# arange(max_positions), so dropping it loses nothing and keeps strict checking of everything else.
_LEGACY_BUFFER_SUFFIXES = ("embeddings.position_ids",)


@dataclass
class LoadedCheckpoint:
    """A classifier ready for inference (eval mode) with its tokenizer and labels."""

    model: ClassifierModel
    tokenizer: Any
    labels: list[str]
    model_dir: Path
    checkpoint_hash: str
    config: dict[str, Any] = field(default_factory=dict)


def backbone_config_for(config: dict[str, Any], source: str) -> DebertaV2Config:
    """The backbone configuration: inline when config.json carries `model_type`, else the base model's."""
    if "model_type" in config:
        return backbone_config_from_dict(config, source=f"{source}/config.json")
    base_model = config.get("base_model")
    if not isinstance(base_model, str) or not base_model:
        raise CheckpointFormatError(
            f"{source}: config.json has neither model_type nor base_model",
            hint="add base_model (e.g. microsoft/deberta-v3-base, or a local directory with its config.json)",
        )
    return backbone_config_from_dict(resolve_base_config(base_model), source=f"base model {base_model}")


def require_weights_file(model_dir: Path) -> Path:
    """`model_dir`'s model.safetensors; without it (a .bin or .pt beside it is never loaded) a
    CheckpointFormatError naming the directory."""
    path = model_dir / WEIGHTS_FILE
    if not path.exists():
        others = sorted(p.name for p in model_dir.glob("*.bin")) + sorted(
            p.name for p in model_dir.glob("*.pt")
        )
        extra = f" (found {', '.join(others)}: only safetensors are loaded)" if others else ""
        raise CheckpointFormatError(
            f"{model_dir}: {WEIGHTS_FILE} is missing{extra}",
            hint=missing_file_hint(model_dir),
        )
    return path


def read_weights(model_dir: Path) -> dict[str, torch.Tensor]:
    state = read_safetensors(require_weights_file(model_dir))
    return {k: v for k, v in state.items() if not k.endswith(_LEGACY_BUFFER_SUFFIXES)}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors on the CPU; a damaged one is a CheckpointFormatError naming it."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as error:
        raise _damaged(path, error) from None


def _damaged(path: Path, error: Exception) -> CheckpointFormatError:
    return CheckpointFormatError(
        f"{path}: not a readable safetensors file ({error})",
        hint="the file is damaged or incomplete (an interrupted download, a Git LFS pointer): re-run "
        "`hpc-classify fetch-models` if it came from the hub, else copy it again",
    )


def _check_keys(expected: set[str], state: dict[str, torch.Tensor], where: Path, layout: str) -> None:
    refuse_key_mismatch(expected - state.keys(), state.keys() - expected, where, layout)


def refuse_key_mismatch(
    missing: Iterable[str],
    unexpected: Iterable[str],
    where: Path,
    layout: str,
    remedy: str = "check base_model / the architecture",
) -> None:
    """A CheckpointFormatError naming `where` and the first keys missing from it or unexpected in it, if any."""
    missing, unexpected = sorted(missing), sorted(unexpected)
    if not (missing or unexpected):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) {missing[:5]}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) {unexpected[:5]}")
    raise CheckpointFormatError(
        f"{where}: weights do not match the classifier built from its config: {'; '.join(parts)}",
        hint=f"expected keys {layout}; {remedy}",
    )


NVIDIA_HEAD_LAYOUT = "model.* (DeBERTa-v2 backbone), fc.weight, fc.bias"


def materialize(
    build: Callable[[], torch.nn.Module],
    state: dict[str, torch.Tensor],
    where: Path,
    layout: str,
    dtype: torch.dtype = torch.float32,
) -> torch.nn.Module:
    """`build()` on the meta device (random init of a base-sized model costs seconds and is overwritten
    anyway), then `state` loaded strictly, in `dtype`; mismatches are CheckpointFormatErrors naming `where`."""
    with torch.device("meta"):
        net = build()
    _check_keys(set(net.state_dict().keys()), state, where, layout)
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:  # shape mismatches: config and weights disagree
        first = str(error).strip().splitlines()[1:4]
        raise CheckpointFormatError(
            f"{where}: weight shapes do not match the configuration: {' '.join(s.strip() for s in first)}",
            hint="the base_model config (hidden size, vocab, layers) and the head sizes must match the weights",
        ) from None
    # Non-persistent buffers are not in any state dict: rebuild the ones we know, else build on CPU.
    for module in net.modules():
        ids = getattr(module, "position_ids", None)
        if isinstance(ids, torch.Tensor) and ids.is_meta:
            module.position_ids = torch.arange(ids.shape[-1]).expand(ids.shape)
    if any(t.is_meta for t in list(net.parameters()) + list(net.buffers())):
        logger.debug("meta-device build left uninitialised tensors; building on CPU instead")
        net = build()
        net.load_state_dict(state, strict=True)
    # assign=True keeps the file's dtype: an fp16 checkpoint would run in fp16 whatever precision was asked
    # (the engine casts from fp32 itself; on a CPU the tiled kernel refuses fp16).
    return net.to(dtype)


SEQUENCE_REGRESSOR_LAYOUT = (
    "those of config.json's architecture (BERT: bert.*, classifier.weight, classifier.bias)"
)


def load_sequence_regressor(
    model_dir: Path, device: str | torch.device, source: str, dtype: torch.dtype = torch.float32
) -> torch.nn.Module:
    """A Hugging Face one-output sequence regressor (config.json naming its architecture, model.safetensors),
    eval, on `device`, in `dtype` whatever the file's. As strict as `materialize`: transformers alone
    initialises a weight missing from the file at random (another head in every worker, silently) and drops
    unexpected ones; here either, or a shape the config does not give, is a CheckpointFormatError naming the
    file. `source` names the model in errors (the hub id or directory as given)."""
    from transformers import AutoModelForSequenceClassification  # lazy: the driver never loads weights

    check_regressor_config(read_json_file(model_dir / "config.json", f"classifier {source}"), source)
    weights = require_weights_file(model_dir)
    with held_warnings(TRANSFORMERS_LOAD_LOGGER) as release:
        model, info = _from_pretrained(AutoModelForSequenceClassification, model_dir, weights, dtype)
        _refuse_regressor_mismatch(info, weights)
        release()
    return model.to(device).eval()


def _from_pretrained(auto_class: Any, model_dir: Path, weights: Path, dtype: torch.dtype) -> tuple[Any, Any]:
    try:
        return auto_class.from_pretrained(
            str(model_dir),
            dtype=dtype,
            use_safetensors=True,
            output_loading_info=True,
            ignore_mismatched_sizes=True,  # reported below, naming the weights, instead of a bare RuntimeError
        )
    except SafetensorError as error:
        raise _damaged(weights, error) from None
    except (OSError, ValueError, KeyError) as error:  # an unknown model_type, an unreadable file
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointFormatError(
            f"{model_dir}: transformers cannot build the model ({type(error).__name__}: {message})",
            hint="config.json must name a transformers architecture (model_type, architectures)",
        ) from None


def _refuse_regressor_mismatch(info: dict[str, Any], weights: Path) -> None:
    if info["mismatched_keys"]:
        shapes = [
            f"{key} {list(got)} (config: {list(want)})" for key, got, want in sorted(info["mismatched_keys"])
        ]
        raise CheckpointFormatError(
            f"{weights}: weight shapes do not match the configuration: {', '.join(shapes[:5])}",
            hint="config.json (hidden size, vocab, layers, one output) and the weights must match",
        )
    refuse_key_mismatch(
        info["missing_keys"],
        info["unexpected_keys"],
        weights,
        SEQUENCE_REGRESSOR_LAYOUT,
        "the file must hold the whole trained model (a backbone saved alone lacks the head)",
    )


def load_checkpoint_tokenizer(model_dir: Path, **options: Any) -> Any:
    """The checkpoint's fast tokenizer (`options` go to AutoTokenizer), or one CheckpointFormatError saying
    what the directory lacks."""
    from transformers import AutoTokenizer  # lazy: pulls in tokenizers and sentencepiece glue

    require_tokenizer_files(model_dir)
    try:
        return AutoTokenizer.from_pretrained(str(model_dir), **options)
    except Exception as error:  # noqa: BLE001 — transformers raises OSError/ValueError/... for bad tokenizers
        hint = "the directory needs tokenizer.json, or spm.model with tokenizer_config.json"
        if not (model_dir / "tokenizer.json").exists() and any(model_dir.glob("*.model")):
            # transformers 5 converts a sentencepiece model to a fast tokenizer only with protobuf.
            hint = "no tokenizer.json here, only a sentencepiece model: `pip install protobuf` to convert it"
        message = str(error).strip().splitlines()[-1] if str(error).strip() else ""
        raise CheckpointFormatError(
            f"{model_dir}: cannot load the tokenizer ({type(error).__name__}: {message})", hint=hint
        ) from None


def check_tokenizer_fits(tokenizer: Any, embedding_rows: int, model_dir: Path) -> None:
    """Refuse a tokenizer with more tokens than the model has embeddings: its extra ids would fail deep in
    the first forward (a device-side assert on a GPU). Fewer is normal: DeBERTa-v3 pads its table."""
    if len(tokenizer) > embedding_rows:
        raise CheckpointFormatError(
            f"{model_dir}: the tokenizer has {len(tokenizer)} tokens but the model's embedding table only "
            f"{embedding_rows} rows (vocab_size)",
            hint="the tokenizer files do not belong to this checkpoint: put back the ones it was trained "
            "with (re-run `hpc-classify fetch-models` if it came from the hub)",
        )


def load_classifier_checkpoint(
    model: str | os.PathLike[str],
    revision: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
) -> LoadedCheckpoint:
    """Load a classifier (hub id or local directory) for inference, with its tokenizer and labels."""
    model = os.fspath(model)
    model_dir = resolve_model_dir(model, revision=revision)
    config = read_json_file(model_dir / "config.json", f"classifier {model}")
    labels = labels_from_config(config, source=str(model))
    backbone = backbone_config_for(config, source=str(model))
    state = read_weights(model_dir)
    fc_dropout = float(config.get("fc_dropout", DEFAULT_FC_DROPOUT))
    net = materialize(
        lambda: ClassifierModel(backbone, len(labels), fc_dropout=fc_dropout),
        state,
        model_dir / WEIGHTS_FILE,
        NVIDIA_HEAD_LAYOUT,
        dtype,
    )
    net = net.to(device=device).eval()
    tokenizer = load_checkpoint_tokenizer(model_dir)
    check_tokenizer_fits(tokenizer, net.model.get_input_embeddings().num_embeddings, model_dir)
    digest = checkpoint_hash(model_dir)
    logger.info("loaded %s (%d labels, checkpoint %s) on %s as %s", model, len(labels), digest, device, dtype)
    return LoadedCheckpoint(net, tokenizer, labels, model_dir, digest, config)
