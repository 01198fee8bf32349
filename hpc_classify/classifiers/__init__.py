"""Classifiers: the user-extensible base class and the NVIDIA checkpoints, registered by name."""

from hpc_classify.classifiers.aegis import AegisClassifier, InstructionDataGuardClassifier
from hpc_classify.classifiers.base import DistributedDataClassifier, LoadedComponents
from hpc_classify.classifiers.checkpoint_classifier import (
    CheckpointClassifier,
    ContentTypeClassifier,
    DomainClassifier,
    MultilingualDomainClassifier,
    QualityClassifier,
)
from hpc_classify.classifiers.fineweb import (
    FineWebEduClassifier,
    FineWebMixtralEduClassifier,
    FineWebNemotronEduClassifier,
)
from hpc_classify.classifiers.prompt_complexity import PromptTaskComplexityClassifier
from hpc_classify.classifiers.registry import CLASSIFIERS, classifier_from_spec, resolve_classifier_class

__all__ = [
    "AegisClassifier",
    "InstructionDataGuardClassifier",
    "CLASSIFIERS",
    "CheckpointClassifier",
    "ContentTypeClassifier",
    "DistributedDataClassifier",
    "DomainClassifier",
    "FineWebEduClassifier",
    "FineWebMixtralEduClassifier",
    "FineWebNemotronEduClassifier",
    "LoadedComponents",
    "MultilingualDomainClassifier",
    "PromptTaskComplexityClassifier",
    "QualityClassifier",
    "classifier_from_spec",
    "resolve_classifier_class",
]
