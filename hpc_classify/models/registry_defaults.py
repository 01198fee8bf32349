"""Default hub ids of the built-in classifiers (models layer, so that fetch-models and classifiers share them)."""

from __future__ import annotations

DEFAULT_MODELS: dict[str, str] = {
    "domain": "nvidia/domain-classifier",
    "quality": "nvidia/quality-classifier-deberta",
    "multilingual-domain": "nvidia/multilingual-domain-classifier",
}
