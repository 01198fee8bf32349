"""A classifier's identity: what model it loads, what changes its output rows (the run fingerprint that
resume compares) and which classifiers can share one loaded engine (the per-process cache key)."""

from __future__ import annotations

import os
from typing import Any

from hpc_classify.classifiers.engine_options import OPTION_NAMES
from hpc_classify.errors import ConfigError

_SCALARS = (str, int, float, bool, type(None))


class ClassifierIdentity:
    """Mixed into `DistributedDataClassifier`: reads its settings (text_field, filter_by, the engine options)
    and calls its `labels` and `output_columns`."""

    # Attributes set by DistributedDataClassifier. A subclass's *other* public attributes (e.g. a model
    # path) are what `model_identity` reports by default.
    # NeMo's BaseModule attributes (nemo_module.py) name no model either, also when set on an instance.
    BASE_ATTRIBUTES = frozenset(
        {
            "filter_by",
            "text_field",
            "pred_column",
            "prob_column",
            "input_backend",
            "multilingual",
            *OPTION_NAMES,
        }
    )

    def model_identity(self) -> dict[str, Any]:
        """What names the model to load (no file reads). Default: the subclass's own public attributes
        (those not in BASE_ATTRIBUTES, not starting with "_") as plain data, paths as strings; override to
        be explicit. An attribute that is not plain data is a ConfigError, never skipped: a skipped model
        path let two classifiers share one cached engine and one fingerprint."""
        return {
            k: plain_identity(v, f"{type(self).__name__}.{k}")
            for k, v in sorted(vars(self).items())
            if not k.startswith("_") and k not in self.BASE_ATTRIBUTES
        }

    def pin_models(self) -> None:
        """Resolve the hub models this classifier loads to their commits, on the client before it is shipped
        to the workers (`fingerprint` does too), so that every worker loads those commits. No hub model: none."""

    def model_fingerprint(self) -> dict[str, Any]:
        """`model_identity` plus, where the classifier knows it, a hash of the model's files."""
        return self.model_identity()

    def fingerprint(self) -> dict[str, Any]:
        """What changes this classifier's output rows. Speed settings (batch size, token budget, device
        placement, workers) are deliberately absent: changing them resumes a run instead of refusing it."""
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "model": self.model_fingerprint(),
            "labels": self.labels,
            "max_chars": self.max_chars,
            "max_tokens": self.max_tokens,
            "precision": self.precision_key(),
            "text_field": self.text_field,
            "filter_by": self.filter_by,
            "columns": self.output_columns(),
        }

    def precision_key(self) -> str:
        """The precision as the fingerprint records it: "fp32" (exact: `autocast=False` or precision fp32),
        "bf16", "int8", or "autocast" for precision auto, which each worker resolves on its own hardware
        (bf16 where native, else fp32); "autocast" is also what runs before the precision policy stored."""
        if not self.autocast or self.precision == "fp32":
            return "fp32"
        return "autocast" if self.precision == "auto" else self.precision

    def engine_key(self) -> tuple:
        """Two classifiers with equal keys can use the same loaded engine (the per-process cache key)."""
        identity = tuple(sorted((k, repr(v)) for k, v in self.model_identity().items()))
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            identity,
            self.max_chars,
            self.max_tokens,
            self.autocast,
            self.precision,
            self.compile,
            self.device,
            self.effective_token_budget(),
        )

    def effective_token_budget(self) -> int | None:
        if self.token_budget is not None:
            return self.token_budget
        # NeMo Curator's batch_size is a number of documents: the equivalent padded-token budget.
        return self.batch_size * (self.max_tokens or 512) if self.batch_size else None


def plain_identity(value: Any, where: str) -> Any:
    """`value` as data with a stable repr and JSON form: scalars as they are, os.PathLike as its path
    string, numpy scalars as Python ones, lists, tuples, sets (sorted) and str-keyed dicts of those. Anything else has no stable
    representation (a default repr holds a memory address, a custom one may omit state): ConfigError."""
    if isinstance(value, _SCALARS):
        return value
    if type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        return value.item()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, list | tuple):
        items = [plain_identity(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, set | frozenset):
        return sorted((plain_identity(item, f"{where} item") for item in value), key=repr)
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: plain_identity(item, f"{where}[{key!r}]") for key, item in sorted(value.items())}
    raise ConfigError(
        f"{where} is of type {type(value).__qualname__}: the default model_identity() takes a classifier's public "
        "attributes as what names its model, and cannot tell this one's identity",
        hint="override model_identity() to return what names the model (e.g. {'model_dir': str(self.model_dir)}), "
        "or store the attribute under a name starting with '_' if it does not change predictions",
    )
