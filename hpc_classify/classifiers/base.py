"""`DistributedDataClassifier`: the base users extend with their own model.

A classifier object holds settings only, so it pickles cheaply into every Dask task (and through
submitit to every node); the loaded model lives in a per-process cache (`_ENGINES`) and is reused by
every partition and file that process classifies. Subclasses say how to load the model, the tokenizer
and the labels; a classifier whose model is not "argmax over labels" also says how its raw outputs
become columns (`columns_from_outputs`, `output_meta`, `output_counts`, `filter_mask`).
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpc_classify.classifiers.value_counts import count_values
from hpc_classify.classifiers.worker_resources import limit_gpu_memory, torch_threads_for_this_process
from hpc_classify.config import DEVICES, check_compile, check_precision
from hpc_classify.errors import ConfigError, InputFileError

if TYPE_CHECKING:
    import torch

    from hpc_classify.datasets import DocumentDataset

logger = logging.getLogger(__name__)


@dataclass
class LoadedComponents:
    model: Any  # torch.nn.Module: (input_ids, attention_mask) -> outputs [batch, num_outputs]
    tokenizer: Any  # a fast (Rust) Hugging Face tokenizer
    labels: list[str]


# One engine per engine_key() per process: loaded on first use, kept between files.
_ENGINES: dict[tuple, tuple[Any, list[str]]] = {}
_ENGINES_LOCK = threading.Lock()


class DistributedDataClassifier(ABC):
    """Base of every classifier. Subclasses implement `load_model`, `load_tokenizer` and `load_labels`
    (or `load_components` when one checkpoint yields all three)."""

    default_pred_column = "pred"
    # Attributes set by this base class. A subclass's *other* public attributes (e.g. a model path) are
    # what `model_identity` reports by default.
    BASE_ATTRIBUTES = frozenset(
        {
            "filter_by",
            "batch_size",
            "text_field",
            "pred_column",
            "prob_column",
            "max_chars",
            "max_tokens",
            "device",
            "autocast",
            "precision",
            "compile",
            "token_budget",
            "max_mem_gb",
        }
    )
    # False for classifiers that do not map token ids to outputs with an InferenceEngine (generative
    # ones): they implement `columns_for_texts` themselves and never share a tokenization.
    uses_inference_engine = True

    def __init__(
        self,
        *,
        filter_by: str | Sequence[str] | None = None,
        batch_size: int | None = None,
        text_field: str = "text",
        pred_column: str | None = None,
        prob_column: str | None = None,
        max_chars: int | None = 2000,
        max_tokens: int | None = 512,
        device: str = "auto",
        autocast: bool = True,
        token_budget: int | None = None,
        device_type: str | None = None,
        max_mem_gb: int | float | None = None,
        precision: str = "auto",
        compile: bool | str = "auto",
    ):
        _check_positive(
            max_chars=max_chars, max_tokens=max_tokens, batch_size=batch_size, token_budget=token_budget
        )
        if device_type not in (None, "auto"):  # NeMo Curator's name for `device`
            if device not in ("auto", device_type):
                raise ConfigError(
                    f"device={device!r} and device_type={device_type!r} disagree: give one of them"
                )
            device = device_type
        if max_mem_gb is not None and (isinstance(max_mem_gb, bool) or not max_mem_gb > 0):
            raise ConfigError(f"max_mem_gb must be a positive number of GiB, not {max_mem_gb!r}")
        if max_mem_gb is not None and device == "cpu":
            raise ConfigError(
                "max_mem_gb limits GPU memory and has no effect on CPU",
                hint="leave it out on CPU; token_budget bounds the memory of a batch there",
            )
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
        if not text_field or not isinstance(text_field, str):
            raise ConfigError(f"text_field must be a non-empty column name, not {text_field!r}")
        if not isinstance(autocast, bool):
            raise ConfigError(f"autocast must be true or false, not {autocast!r}")
        check_precision(precision, autocast)
        check_compile(compile)
        if compile is True and precision == "int8":
            raise ConfigError(
                "compile=True with precision int8: the dynamically quantized Linear layers are not compiled",
                hint="use compile auto/false with int8, or precision bf16/fp32 with compile",
            )
        if precision == "int8" and device == "cuda":
            raise ConfigError(
                "precision int8 (dynamically quantized Linear layers) runs on CPU only, not on device cuda",
                hint="use precision auto (bf16/fp16) on GPUs, or device cpu",
            )
        self.filter_by = (
            [filter_by] if isinstance(filter_by, str) else (list(filter_by) if filter_by else None)
        )
        self.batch_size = batch_size
        self.text_field = text_field
        self.pred_column = pred_column or self.default_pred_column
        self.prob_column = prob_column
        self.max_chars = max_chars
        self.max_tokens = max_tokens
        self.device = device
        self.autocast = autocast
        self.precision = precision
        self.compile = compile  # a speed setting: in engine_key, not in the fingerprint
        self.token_budget = token_budget
        self.max_mem_gb = max_mem_gb
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

    # -- identity: what the model is, what changes predictions ---------------------------------
    def model_identity(self) -> dict[str, Any]:
        """What names the model to load (no file reads). Default: the subclass's own public attributes
        of plain types, such as a model directory; override to be explicit."""
        plain = (str, int, float, bool, type(None), list, tuple)
        return {
            k: v
            for k, v in sorted(vars(self).items())
            if not k.startswith("_") and k not in self.BASE_ATTRIBUTES and isinstance(v, plain)
        }

    def model_fingerprint(self) -> dict[str, Any]:
        """`model_identity` plus, where the classifier knows it, a hash of the model's files."""
        return self.model_identity()

    def output_columns(self) -> list[str]:
        """The columns this classifier adds to a frame."""
        return [self.pred_column, *([self.prob_column] if self.prob_column else [])]

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

    # -- labels and validation ---------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = list(self.load_labels())
            self._check_filter_labels(self._labels)
        return self._labels

    def get_labels(self) -> list[str]:
        """NeMo Curator's name for `labels`."""
        return self.labels

    def _check_filter_labels(self, labels: list[str]) -> None:
        unknown = sorted(set(self.filter_by or ()) - set(labels))
        if unknown:
            raise ConfigError(
                f"filter_by names label(s) this model does not have: {', '.join(unknown)}",
                hint=f"valid labels: {', '.join(labels)}",
            )

    def effective_token_budget(self) -> int | None:
        if self.token_budget is not None:
            return self.token_budget
        # NeMo Curator's batch_size is a number of documents: the equivalent padded-token budget.
        return self.batch_size * (self.max_tokens or 512) if self.batch_size else None

    def prepare_device(self) -> torch.device:
        """This worker's device for the model: torch threads set on CPU (where max_mem_gb is an error),
        the GPU memory limit applied on CUDA."""
        from hpc_classify.engine import configure_threads, resolve_device

        device = resolve_device(self.device)
        if device.type == "cpu":
            if self.max_mem_gb is not None:
                raise ConfigError(
                    f"max_mem_gb={self.max_mem_gb} was given but this worker has no GPU (it limits GPU memory)",
                    hint="leave max_mem_gb out on CPU nodes",
                )
            configure_threads(torch_threads_for_this_process())
        else:
            limit_gpu_memory(device, self.max_mem_gb)
        return device

    def _token_budget_for(self, device: torch.device) -> int | None:
        """On CPU a budget derived from a GPU-sized batch_size (NeMo's 256 documents) is capped at the CPU
        default: batch size changes speed and memory, never predictions."""
        from hpc_classify.engine.device import default_token_budget

        budget = self.effective_token_budget()
        if device.type == "cpu" and self.token_budget is None and budget is not None:
            return min(budget, default_token_budget(device))
        return budget

    # -- the engine, once per process ----------------------------------------------------------
    def engine(self) -> tuple[Any, list[str]]:
        """(InferenceEngine, labels), loaded on first use in this process and cached."""
        key = self.engine_key()
        with _ENGINES_LOCK:
            cached = _ENGINES.get(key)
            if cached is None:
                cached = self._build_engine()
                _ENGINES[key] = cached
        self._check_filter_labels(cached[1])  # an engine cached for another filter_by: check this one's
        self._labels = list(cached[1])
        return cached

    def engine_description(self) -> str | None:
        """How this process's engine for this classifier runs ("bf16, eager, bias attention"), for markers
        and the run summary; None before it is loaded (never loads it)."""
        with _ENGINES_LOCK:
            cached = _ENGINES.get(self.engine_key())
        describe = getattr(cached[0], "describe", None) if cached else None
        return describe() if describe else None

    def _build_engine(self) -> tuple[Any, list[str]]:
        from hpc_classify.classifiers.adapters import as_logits_module
        from hpc_classify.engine import InferenceEngine

        device = self.prepare_device()
        components = self.load_components(device)
        labels = list(components.labels)
        self._check_filter_labels(labels)
        engine = InferenceEngine(
            as_logits_module(components.model),
            components.tokenizer,
            device=device,
            autocast=self.autocast,
            precision=self.precision,
            compile=self.compile,
            max_chars=self.max_chars,
            max_tokens=self.max_tokens,
            token_budget=self._token_budget_for(device),
        )
        logger.info("loaded %s on %s (%d labels)", type(self).__name__, device, len(labels))
        return engine, labels

    # -- from raw model outputs to columns (override for regressors and multi-head models) -------
    def columns_from_outputs(self, outputs: np.ndarray, labels: list[str]) -> dict[str, Any]:
        """Column name -> values (one per row) from the model's raw outputs [rows, num_outputs]."""
        from hpc_classify.engine.engine import softmax

        probabilities = softmax(outputs)
        names = np.asarray(labels, dtype=object)
        columns: dict[str, Any] = {
            self.pred_column: names[probabilities.argmax(axis=1)] if len(outputs) else []
        }
        if self.prob_column:
            columns[self.prob_column] = [row.tolist() for row in probabilities]
        return columns

    def output_meta(self) -> dict[str, Any]:
        """Column name -> pandas dtype of what `columns_from_outputs` adds (for Dask's lazy metadata)."""
        meta: dict[str, Any] = {self.pred_column: "str"}
        if self.prob_column:
            meta[self.prob_column] = object
        return meta

    def output_counts(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        """Per output column, value -> count over `frame` (every label listed, zero when unused)."""
        return {self.pred_column: count_values(frame[self.pred_column].tolist(), self.labels)}

    def filter_mask(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows to keep (bool per row): all of them without `filter_by`."""
        if not self.filter_by:
            return np.ones(len(frame), dtype=bool)
        self.labels  # noqa: B018 -- validates filter_by against the model's labels (once)
        return frame[self.pred_column].isin(self.filter_by).to_numpy(dtype=bool)

    # -- classifying pandas frames ------------------------------------------------------------
    def predict_frame(self, frame: pd.DataFrame, *, source: str = "<dataframe>") -> pd.DataFrame:
        """Return `frame` with this classifier's output columns added."""
        from hpc_classify.classifiers.combine import predict_together

        return predict_together([self], frame, source=source)

    def columns_for_texts(self, texts: list[str]) -> dict[str, Any]:
        """Output columns for `texts`, for classifiers with `uses_inference_engine = False`."""
        raise NotImplementedError(f"{type(self).__name__} must implement columns_for_texts")

    def filter_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.filter_mask(frame)] if self.filter_by else frame

    def classify_frame(self, frame: Any, *, source: str = "<dataframe>") -> Any:
        """Predict and filter one partition: a pandas frame, or a cuDF frame on the GPU backend."""
        if type(frame).__module__.startswith("cudf"):
            # The tokenizer needs Python strings anyway: classify on the host, hand cuDF back. (GPU-only path.)
            import cudf

            return cudf.from_pandas(self.classify_frame(frame.to_pandas(), source=source))
        return self.filter_frame(self.predict_frame(frame, source=source))

    def texts(self, frame: pd.DataFrame, source: str) -> list[str]:
        """The frame's documents, or InputFileError naming the source when a row has no string text."""
        if self.text_field not in frame.columns:
            raise InputFileError(
                source,
                f"no text column {self.text_field!r} (columns: {', '.join(map(str, frame.columns))})",
                hint="set text_field / --text-field to the column that holds the documents",
            )
        column = frame[self.text_field]
        bad = [i for i, value in enumerate(column.tolist()) if not isinstance(value, str)]
        if bad:
            row = bad[0] + 1
            if source == "<dataframe>" and "file_name" in frame.columns:  # read with add_filename=True
                names = frame["file_name"].tolist()
                source = str(names[bad[0]])
                row = names[: bad[0] + 1].count(
                    names[bad[0]]
                )  # its row in that file (a partition may hold several)
            raise InputFileError(
                source,
                f"{len(bad)} row(s) whose {self.text_field!r} is missing or not a string, first at row {row}",
                hint="fix or drop those rows (the driver's --on-bad-row skip quarantines them)",
            )
        return column.tolist()

    # -- the Dask dataframe API ---------------------------------------------------------------
    def __call__(self, dataset: DocumentDataset) -> DocumentDataset:
        """Classify lazily: a map over partitions; the model loads once per worker process."""
        meta = dataset.df._meta.copy()
        for column, dtype in self.output_meta().items():
            meta[column] = pd.Series([], dtype=dtype)
        return dataset.map_partitions(self.classify_frame, meta=meta)


def _check_positive(**values: Any) -> None:
    for name, value in values.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigError(f"{name} must be a positive integer, not {value!r}")
