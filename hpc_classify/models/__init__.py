"""Classifier checkpoints: finding them (local directory or Hugging Face cache/hub), loading them, and
building tiny ones for tests and the demo.

Exports resolve lazily, so `hpc_classify.models.registry_defaults` or `.hub` can be imported without
paying for torch/transformers (the CLI and the driver only need names and paths).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClassifierModel": "head",
    "build_classifier_model": "head",
    "LoadedCheckpoint": "checkpoint",
    "load_classifier_checkpoint": "checkpoint",
    "labels_from_config": "checkpoint",
    "checkpoint_hash": "checkpoint",
    "resolve_model_dir": "hub",
    "resolve_base_config": "hub",
    "CLASSIFIER_FILE_PATTERNS": "hub",
    "DEFAULT_MODELS": "registry_defaults",
    "DOMAIN_LABELS": "tiny",
    "QUALITY_LABELS": "tiny",
    "build_tiny_checkpoint": "tiny",
    "synthetic_corpus": "tiny",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
