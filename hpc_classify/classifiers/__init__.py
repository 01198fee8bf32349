"""Classifiers: the user-extensible base class and the NVIDIA checkpoints, registered by name."""

from hpc_classify.classifiers.base import DistributedDataClassifier, LoadedComponents
from hpc_classify.classifiers.checkpoint_classifier import (
    CheckpointClassifier,
    DomainClassifier,
    MultilingualDomainClassifier,
    QualityClassifier,
)
from hpc_classify.classifiers.registry import CLASSIFIERS, classifier_from_spec, resolve_classifier_class

__all__ = [
    "CLASSIFIERS",
    "CheckpointClassifier",
    "DistributedDataClassifier",
    "DomainClassifier",
    "LoadedComponents",
    "MultilingualDomainClassifier",
    "QualityClassifier",
    "classifier_from_spec",
    "resolve_classifier_class",
]
