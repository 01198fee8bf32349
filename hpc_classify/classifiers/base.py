"""`DistributedDataClassifier`: the base users extend with their own model, and what a subclass says.

A subclass says how to load the model, the tokenizer and the labels (`load_model`, `load_tokenizer`,
`load_labels`, or `load_components`); a classifier whose model is not "argmax over labels" also says how
its raw outputs become columns (`columns_from_outputs`, `output_meta`, `output_counts`, `filter_mask`).
The rest is composed from one module per job: the engine options (`engine_options`), identity and
fingerprint (`identity`), the per-process model cache and device setup (`runtime`), and applying a
classifier to pandas, cuDF and Dask frames (`frames`), and NeMo's `BaseModule` surface (`nemo_module`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpc_classify.classifiers import runtime
from hpc_classify.classifiers.engine_options import EngineOptions
from hpc_classify.classifiers.frames import FrameMethods
from hpc_classify.classifiers.identity import ClassifierIdentity
from hpc_classify.classifiers.inherited_keywords import inherited_keywords
from hpc_classify.classifiers.nemo_module import NemoModule
from hpc_classify.classifiers.own_columns import check_column_name
from hpc_classify.classifiers.value_counts import count_values
from hpc_classify.errors import CheckpointFormatError, ConfigError

if TYPE_CHECKING:
    import torch


@dataclass
class LoadedComponents:
    model: Any  # torch.nn.Module: (input_ids, attention_mask) -> outputs [batch, num_outputs]
    tokenizer: Any  # a fast (Rust) Hugging Face tokenizer
    labels: list[str]


# The keyword order of help(DistributedDataClassifier) and of the registry's hints, as before the options were
# declared once (NeMo's argument order first); an option not listed here comes last.
_KEYWORD_ORDER = (
    "filter_by",
    "batch_size",
    "text_field",
    "pred_column",
    "prob_column",
    "max_chars",
    "max_tokens",
    "device",
    "autocast",
    "token_budget",
    "device_type",
)


@inherited_keywords(order=_KEYWORD_ORDER)
class DistributedDataClassifier(ClassifierIdentity, FrameMethods, NemoModule, ABC):
    """Base of every classifier. Subclasses implement `load_model`, `load_tokenizer` and `load_labels`
    (or `load_components` when one checkpoint yields all three)."""

    default_pred_column = "pred"
    # False for classifiers that do not map token ids to outputs with an InferenceEngine (generative
    # ones): they implement `columns_for_texts` themselves and never share a tokenization.
    uses_inference_engine = True
    # Engine options a subclass sets itself, so that they are not constructor arguments.
    fixed_engine_options: tuple[str, ...] = ()
    # False where NeMo's classifier never filters (scores, several heads): a filter_by is refused.
    filters_by_label = True

    def __init__(
        self,
        *,
        filter_by: str | Sequence[str] | None = None,
        text_field: str = "text",
        pred_column: str | None = None,
        prob_column: str | None = None,
        device_type: str | None = None,
        **inherited: Any,
    ):
        """The keywords, and the engine options (`EngineOptions`: device, precision, max_chars, ...)."""
        if device_type not in (None, "auto"):  # NeMo Curator's name for `device`
            device = inherited.get("device", "auto")
            if device not in ("auto", device_type):
                raise ConfigError(
                    f"device={device!r} and device_type={device_type!r} disagree: give one of them"
                )
            inherited["device"] = device_type
        options = EngineOptions(**inherited)
        # NeMo's base takes neither: its classifiers, and subclasses written after them, set
        # `self.text_field` / `self.prob_column` before calling it. Kept unless another is given here.
        if text_field == "text":
            text_field = self.__dict__.get("text_field", text_field)
        if prob_column is None:
            prob_column = self.__dict__.get("prob_column")
        if not text_field or not isinstance(text_field, str):
            raise ConfigError(f"text_field must be a non-empty column name, not {text_field!r}")
        # None: the class's default (a YAML null is "not set"); "" was silently that default too: refused.
        if pred_column is not None:
            check_column_name(type(self).__name__, "pred_column", pred_column)
        check_column_name(type(self).__name__, "prob_column", prob_column, optional=True)
        self.filter_by = filter_by  # the property: normalised and checked (filter_labels)
        self.text_field = text_field
        self.pred_column = pred_column or self.default_pred_column
        self.prob_column = prob_column
        for name, value in options.as_dict().items():  # plain attributes: what subclasses and users read
            setattr(self, name, value)
        self._labels: list[str] | None = None

    # -- what a subclass supplies ------------------------------------------------------------
    @abstractmethod
    def load_model(self, device: torch.device) -> torch.nn.Module:
        """Return a module mapping (input_ids, attention_mask) to logits [batch, num_labels], on `device`."""

    @abstractmethod
    def load_tokenizer(self) -> Any:
        """Return a fast Hugging Face tokenizer."""

    @abstractmethod
    def load_labels(self) -> list[str]:
        """Return the label names in the model's output order. Must be cheap (no weights)."""

    def load_components(self, device: torch.device) -> LoadedComponents:
        return LoadedComponents(self.load_model(device), self.load_tokenizer(), self.load_labels())

    # -- labels and validation ---------------------------------------------------------------
    @property
    def filter_by(self) -> list[str] | None:
        """The labels whose rows are kept (None: every row), as a list."""
        return self.__dict__.get("_filter_by")

    @filter_by.setter
    def filter_by(self, value: str | Sequence[str] | None) -> None:
        """Set as in the constructor (`filter_labels`): a string is one label, never its letters; checked
        against the labels now when they are known, else when they load."""
        labels = filter_labels(value)
        if labels is not None and not self.filters_by_label:
            raise ConfigError(
                f"{type(self).__name__} does not filter: filter_by must be None, not {value!r}",
                hint="filter the output columns yourself, e.g. dataset.df[dataset.df[column] > 0.5]",
            )
        self._filter_by = labels
        known = self.__dict__.get("_labels")
        if labels is not None and known is not None:
            self._check_filter_labels(known)

    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = list(self.load_labels())
            self._check_filter_labels(self._labels)
        return self._labels

    @labels.setter
    def labels(self, value: Any) -> None:
        """NeMo's subclasses assign their labels; here they come from `load_labels()` (cheap, no weights)."""
        raise ConfigError(
            f"{type(self).__name__}: labels cannot be assigned (self.labels = ...), as NeMo's subclasses do",
            hint="return them from load_labels(self) instead (docs/python-api.md: your own model)",
        )

    def get_labels(self) -> list[str]:
        """NeMo Curator's name for `labels`."""
        return self.labels

    @property
    def out_dim(self) -> int | None:
        """NeMo's number of model outputs: one per label unless set (a NeMo-style subclass assigns it, as
        NeMo's own classifiers do); regressors and multi-head models override it."""
        given = self.__dict__.get("_out_dim")
        return given if given is not None else len(self.labels)

    @out_dim.setter
    def out_dim(self, value: int | None) -> None:
        self._out_dim = value

    @property
    def device_type(self) -> str:
        """NeMo Curator's name for `device` (auto, cpu or cuda): the same attribute."""
        return self.device

    @device_type.setter
    def device_type(self, value: str) -> None:
        self.device = value

    def _check_filter_labels(self, labels: list[str]) -> None:
        unknown = sorted(set(self.filter_by or ()) - set(labels))
        if unknown:
            raise ConfigError(
                f"filter_by names label(s) this model does not have: {', '.join(unknown)}",
                hint=f"valid labels: {', '.join(labels)}",
            )

    # -- the per-process runtime ---------------------------------------------------------------
    def prepare_device(self) -> torch.device:
        """This worker's device for the model (threads, GPU memory limit): `runtime.prepare_device`."""
        return runtime.prepare_device(self.device, self.max_mem_gb)

    def engine(self) -> tuple[Any, list[str]]:
        """(InferenceEngine, labels), loaded on first use in this process and cached."""
        key = self.engine_key()
        if self.max_mem_gb is not None and runtime.loaded_model(key) is not None:
            # Loaded for another classifier (max_mem_gb is not in the key): this one's GPU memory cap still
            # applies, and on a worker without a GPU it is still an error.
            self.prepare_device()
        cached = runtime.cached_model(key, lambda: runtime.load_engine(self))
        self._check_filter_labels(cached[1])  # an engine cached for another filter_by: check this one's
        self._labels = list(cached[1])
        return cached

    def engine_description(self) -> str | None:
        """How this process's engine for this classifier runs ("bf16, eager, bias attention"), for markers
        and the run summary; None before it is loaded (never loads it)."""
        cached = runtime.loaded_model(self.engine_key())
        describe = getattr(cached[0], "describe", None) if cached else None
        return describe() if describe else None

    # -- from raw model outputs to columns (override for regressors and multi-head models) -------
    def output_columns(self) -> list[str]:
        """The columns this classifier adds to a frame, in NeMo's order: the probabilities before the label
        (NeMo adds the probability column first, then the prediction)."""
        return [*([self.prob_column] if self.prob_column else []), self.pred_column]

    def columns_from_outputs(self, outputs: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """Column name -> values (one per row) from the model's raw outputs [rows, num_outputs]."""
        from hpc_classify.engine.engine import softmax

        probabilities = softmax(outputs)
        names = np.asarray(labels, dtype=object)
        columns: dict[str, Any] = {}
        if self.prob_column:
            columns[self.prob_column] = [row.tolist() for row in probabilities]
        columns[self.pred_column] = names[probabilities.argmax(axis=1)] if len(outputs) else []
        return columns

    def check_outputs(self, num_outputs: int, labels: list[str]) -> None:
        """CheckpointFormatError unless the model has one output per label, when the default
        `columns_from_outputs` (argmax over labels) reads them: fewer outputs never predicted the last
        labels, more failed only where the argmax fell past them. Checked once, where the engine loads."""
        if type(self).columns_from_outputs is not DistributedDataClassifier.columns_from_outputs:
            return  # regressors, multi-head models: their own mapping from outputs to columns
        if num_outputs != len(labels):
            raise CheckpointFormatError(
                f"{type(self).__name__}: the model has {num_outputs} output(s) but there are "
                f"{len(labels)} label(s); each output is one label's score",
                hint="make load_labels() return one label per model output, in the model's order "
                "(or override columns_from_outputs for a model that is not argmax over labels)",
            )

    def output_meta(self) -> dict[str, Any]:
        """Column name -> pandas dtype of what `columns_from_outputs` adds (for Dask's lazy metadata)."""
        meta: dict[str, Any] = {self.prob_column: object} if self.prob_column else {}
        meta[self.pred_column] = "str"
        return meta

    def output_types(self) -> dict[str, Any]:
        """Column -> the Arrow type each output column has in a Parquet output, also in a piece or file
        without rows: `output_meta`'s dtype ("str": string; None for object: as pyarrow infers it from the
        values), the default probability lists list<double>. Values that do not convert are inferred."""
        from hpc_classify.io.parquet_types import arrow_type_of

        meta = self.output_meta()
        types = {column: arrow_type_of(dtype) for column, dtype in meta.items()}
        if self.prob_column in meta and pd.api.types.is_object_dtype(meta[self.prob_column]):
            import pyarrow as pa

            types[self.prob_column] = pa.list_(pa.float64())  # `columns_from_outputs`: lists of floats
        return types

    def output_counts(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        """Per output column, value -> count over `frame` (every label listed, zero when unused)."""
        return {self.pred_column: count_values(frame[self.pred_column].tolist(), self.labels)}

    def filter_mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows to keep (bool per row): all of them without `filter_by`."""
        if self.filter_by is None:
            return np.ones(len(frame), dtype=bool)
        self.labels  # noqa: B018 -- validates filter_by against the model's labels (once)
        return frame[self.pred_column].isin(self.filter_by).to_numpy(dtype=bool)

    def columns_for_texts(self, texts: list[str]) -> dict[str, Any]:
        """Output columns for `texts`, for classifiers with `uses_inference_engine = False`."""
        raise NotImplementedError(f"{type(self).__name__} must implement columns_for_texts")


def filter_labels(filter_by: Any) -> list[str] | None:
    """`filter_by` as a list of labels. An empty list keeps no row, as NeMo's `isin([])` does: never "no
    filter". A mapping (a YAML `filter_by: {News: 1}`) or a non-label is refused, not read as its keys."""
    if filter_by is None:
        return None
    if isinstance(filter_by, str):
        return [filter_by]
    if isinstance(filter_by, Iterable) and not isinstance(filter_by, Mapping):
        labels = list(filter_by)
        if all(isinstance(label, str) for label in labels):
            return labels
    raise ConfigError(
        f"filter_by must be a label or a list of labels, not {filter_by!r}",
        hint="e.g. filter_by: [News, Games]; in YAML quote labels that read as numbers or booleans: ['1', 'yes']",
    )
