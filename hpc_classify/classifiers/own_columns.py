"""A classifier's output column names. Each one is a non-empty string, checked at construction
(`check_column_name`): `""` was replaced by a default without a word, and a number or a list failed only when
written. One classifier that writes one column twice (`pred_column` and `prob_column` both "x"): the second would
overwrite the first, as NeMo's classifiers do without a word. Refused before anything runs, by `check_classifiers`
(a run) and by `call` (NeMo's `classifier(dataset)`), naming the two parameters."""

from __future__ import annotations

from typing import Any

from hpc_classify.errors import ConfigError


def check_column_name(owner: str, parameter: str, value: Any, *, optional: bool = False) -> None:
    """ConfigError unless `value` is a non-empty string (or None, where `optional`: no such column)."""
    if (value is None and optional) or (isinstance(value, str) and value):
        return
    allowed = "a non-empty column name, or None for no such column" if optional else "a non-empty column name"
    raise ConfigError(
        f"{owner}: {parameter} must be {allowed}, not {value!r}",
        hint=f"pass {parameter}='my_column', or leave it out for the default",
    )


def check_own_columns(classifier: Any) -> None:
    """ConfigError when `classifier.output_columns()` names a column twice. Its parameters are its attributes
    named *_column that hold that name (a leading "_" dropped: InstructionDataGuardClassifier keeps its
    `pred_column` argument as `_pred_column`, as NeMo does); a subclass whose columns come from elsewhere gets
    its output columns named instead."""
    columns = list(classifier.output_columns())
    repeated = next((column for i, column in enumerate(columns) if column in columns[:i]), None)
    if repeated is None:
        return
    parameters = [
        name.lstrip("_")
        for name, value in vars(classifier).items()
        if name.endswith("_column") and isinstance(value, str) and value == repeated
    ]
    what = " and ".join(parameters[:2]) if len(parameters) >= 2 else f"output columns {columns}"
    raise ConfigError(
        f"{type(classifier).__name__}'s {what} are both {repeated!r}: name them apart",
        hint="each output column needs a name of its own: the second would overwrite the first",
    )
