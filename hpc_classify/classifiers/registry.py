"""Classifiers by name, as the CLI and the driver's tasks know them."""

from __future__ import annotations

from typing import Any

from hpc_classify.classifiers.base import DistributedDataClassifier
from hpc_classify.classifiers.checkpoint_classifier import (
    DomainClassifier,
    MultilingualDomainClassifier,
    QualityClassifier,
)
from hpc_classify.config import ClassifierSettings
from hpc_classify.errors import ConfigError

CLASSIFIERS: dict[str, type[DistributedDataClassifier]] = {
    "domain": DomainClassifier,
    "quality": QualityClassifier,
    "multilingual-domain": MultilingualDomainClassifier,
}

# Settings that are only passed when given, so that each classifier keeps its own defaults.
_OPTIONAL_SETTINGS = ("pred_column", "prob_column", "max_chars", "max_tokens", "batch_size", "token_budget")


def build_classifier(settings: ClassifierSettings) -> DistributedDataClassifier:
    try:
        cls = CLASSIFIERS[settings.classifier]
    except KeyError:
        raise ConfigError(
            f"unknown classifier {settings.classifier!r}", hint=f"choose one of: {', '.join(CLASSIFIERS)}"
        ) from None
    kwargs: dict[str, Any] = {
        "model": settings.model,
        "revision": settings.revision,
        "filter_by": settings.filter_by,
        "text_field": settings.text_field,
        "device": settings.device,
        "autocast": settings.autocast,
    }
    kwargs.update(
        {name: getattr(settings, name) for name in _OPTIONAL_SETTINGS if getattr(settings, name) is not None}
    )
    return cls(**kwargs)


# A task rebuilds its classifier from settings; keeping one object per settings per process keeps its
# label cache warm (the loaded model itself is cached in classifiers.base regardless).
_BY_SETTINGS: dict[ClassifierSettings, DistributedDataClassifier] = {}


def get_cached_classifier(settings: ClassifierSettings) -> DistributedDataClassifier:
    classifier = _BY_SETTINGS.get(settings)
    if classifier is None:
        classifier = _BY_SETTINGS[settings] = build_classifier(settings)
    return classifier
