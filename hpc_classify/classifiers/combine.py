"""Several classifiers over one frame: checked together, tokenized once per shared tokenizer, filtered together.

Classifiers whose engines tokenize identically (same tokenizer, max_chars and max_tokens: the engine's
`tokenize.key`) on the same text column form one group: the group's documents are tokenized once and
every member's model runs on those ids.
A row is kept when it passes every classifier's `filter_by`. (Whether a list of objects is a valid set of
classifiers for one run is `run_checks.check_classifiers`: this module knows classifiers only by what they do.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# The classifiers here are DistributedDataClassifier objects, known by what they do (base.py imports this
# module through frames.py: naming the class here would close an import circle).
Classifier = Any


def text_fields(classifiers: Sequence[Classifier]) -> tuple[str, ...]:
    """The text columns the classifiers read, in order, without repeats: a row is classified only when its
    text is a string in every one of them (the driver reads files checking them all)."""
    return tuple(dict.fromkeys(classifier.text_field for classifier in classifiers))


def sharing_groups(engines: Sequence[Any], text_fields: Sequence[str]) -> list[list[int]]:
    """Indices of engines grouped by the tokenization they can share (singletons when they cannot)."""
    groups: dict[Any, list[int]] = {}
    for index, (engine, text_field) in enumerate(zip(engines, text_fields, strict=True)):
        key = engine.tokenize.key
        groups.setdefault(("alone", index) if key is None else (key, text_field), []).append(index)
    return list(groups.values())


def predict_together(
    classifiers: Sequence[Classifier], frame: pd.DataFrame, *, source: str = "<dataframe>"
) -> pd.DataFrame:
    """`frame` with every classifier's output columns added (rows and index unchanged)."""
    from hpc_classify.engine import batch_progress, predict_sharing_tokens

    result = frame.copy()

    def add(classifier: Classifier, columns: dict[str, Any]) -> None:
        meta = classifier.output_meta()
        for column, values in columns.items():
            result[column] = pd.Series(values, index=frame.index, dtype=meta.get(column))

    on_engines = [i for i, c in enumerate(classifiers) if c.uses_inference_engine]
    loaded = {i: classifiers[i].engine() for i in on_engines}  # (engine, labels), cached per process
    groups = sharing_groups(
        [loaded[i][0] for i in on_engines], [classifiers[i].text_field for i in on_engines]
    )
    for group in groups:
        members = [on_engines[g] for g in group]
        texts = classifiers[members[0]].texts(frame, source)
        with batch_progress.scaled(1 / len(groups)):  # every group passes over the same documents
            outputs = predict_sharing_tokens([loaded[i][0] for i in members], texts)
        for index, raw in zip(members, outputs, strict=True):
            add(classifiers[index], classifiers[index].columns_from_outputs(raw, loaded[index][1]))
    for classifier in classifiers:
        if not classifier.uses_inference_engine:
            add(classifier, classifier.columns_for_texts(classifier.texts(frame, source)))
    return result


def predict_frames(
    classifiers: Sequence[Classifier], frames: Sequence[pd.DataFrame], *, source: str
) -> list[pd.DataFrame]:
    """Every frame with every classifier's output columns added, classified as one stream of documents:
    the documents of all frames share the engine's length-sorted batches (several small files give full
    batches, not one short batch each). Each frame's texts must already be valid (`texts`): an error here
    is the whole group's (`source` names it)."""
    fields = list(text_fields(classifiers))
    union = pd.concat([frame[fields] for frame in frames], ignore_index=True)
    # predict_together is looked up at call time (a module global), so a wrapper of it sees the group too.
    predicted = predict_together(classifiers, union, source=source)
    added = [column for column in predicted.columns if column not in union.columns]
    results: list[pd.DataFrame] = []
    start = 0
    for frame in frames:
        stop = start + len(frame)
        result = frame.copy()
        for column in added:
            values = predicted[column].iloc[start:stop].to_numpy()
            result[column] = pd.Series(values, index=frame.index, dtype=predicted[column].dtype)
        results.append(result)
        start = stop
    return results


def keep_mask(classifiers: Sequence[Classifier], frame: pd.DataFrame) -> np.ndarray:
    """Rows that pass every classifier's filter."""
    mask = np.ones(len(frame), dtype=bool)
    for classifier in classifiers:
        mask &= classifier.filter_mask(frame)
    return mask


def output_counts(classifiers: Sequence[Classifier], frame: pd.DataFrame) -> dict[str, dict]:
    """Every classifier's `output_counts`, merged (column names are unique across classifiers)."""
    counts: dict[str, dict] = {}
    for classifier in classifiers:
        counts.update(classifier.output_counts(frame))
    return counts


def output_types(classifiers: Sequence[Classifier]) -> dict[str, Any]:
    """Every classifier's `output_types`, merged (a later classifier's column replaces an earlier one's, as
    its values do in `predict_together`)."""
    types: dict[str, Any] = {}
    for classifier in classifiers:
        types.update(classifier.output_types())
    return types
