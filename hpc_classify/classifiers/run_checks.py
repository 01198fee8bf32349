"""The classifiers of one run, checked before anything runs (`check_classifiers`): each a
DistributedDataClassifier, no column written twice, within one classifier or by two, and no override of NeMo's
Dask-level hooks, which a run would ignore without a word."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpc_classify.classifiers.base import DistributedDataClassifier
from hpc_classify.classifiers.frames import FrameMethods
from hpc_classify.classifiers.own_columns import check_own_columns
from hpc_classify.errors import ConfigError


def check_classifiers(classifiers: Sequence[Any]) -> list[DistributedDataClassifier]:
    """The classifiers as a list, or ConfigError: not a DistributedDataClassifier, or two of them writing
    the same column (named with both classifiers). RunConfig has already refused an empty list."""
    found = list(classifiers)
    owners: dict[str, str] = {}
    for position, classifier in enumerate(found, start=1):
        if not isinstance(classifier, DistributedDataClassifier):
            raise ConfigError(
                f"classifier {position} is a {type(classifier).__name__}, not a DistributedDataClassifier",
                hint="subclass hpc_classify.DistributedDataClassifier",
            )
        name = f"{position}: {type(classifier).__name__}"
        _check_no_dataset_hooks(classifier, name)
        check_own_columns(classifier)  # a clash within one classifier, named by its parameters
        for column in classifier.output_columns():
            if column in owners:
                raise ConfigError(
                    f"column {column!r} is written by classifier {owners[column]} and by classifier {name}",
                    hint="give one of them another pred_column / prob_column",
                )
            owners[column] = name
    return found


# NeMo's Dask-level hooks: `classifier(dataset)` runs them; a run classifies each file's frame instead.
_DATASET_HOOKS = ("call", "_run_classifier", "_filter_documents")


def _check_no_dataset_hooks(classifier: DistributedDataClassifier, name: str) -> None:
    """ConfigError for a classifier whose class overrides `call`, `_run_classifier` or `_filter_documents`:
    a run (`hpc-classify run`, `run()`) never calls them, so the override would be ignored without a word."""
    cls = type(classifier)
    overridden = [hook for hook in _DATASET_HOOKS if getattr(cls, hook) is not getattr(FrameMethods, hook)]
    if overridden:
        raise ConfigError(
            f"classifier {name} overrides {', '.join(overridden)}, which a run does not call: it classifies "
            "each file's rows with predict_frame and keeps them by filter_mask",
            hint="for a run, override columns_from_outputs (the columns) and filter_mask (the rows kept); "
            "or classify through the Dask API: classifier(DocumentDataset.read_json(...))",
        )
