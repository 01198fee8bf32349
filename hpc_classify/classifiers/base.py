"""`DistributedDataClassifier`: the base users extend with their own model.

A classifier object holds settings only, so it pickles cheaply into every Dask task; the loaded model
lives in a per-process cache (`_ENGINES`) and is reused by every partition and file that process
classifies. Subclasses say how to load the model, the tokenizer and the labels.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpc_classify.errors import ConfigError, InputFileError

if TYPE_CHECKING:
    import torch

    from hpc_classify.dataset import DocumentDataset

logger = logging.getLogger(__name__)

TORCH_THREADS_ENV = "HPC_CLASSIFY_TORCH_THREADS"


@dataclass
class LoadedComponents:
    model: Any  # torch.nn.Module: (input_ids, attention_mask) -> logits [batch, num_labels]
    tokenizer: Any  # a fast (Rust) Hugging Face tokenizer
    labels: list[str]


# One engine per (classifier class, settings) per process: loaded on first use, kept between files.
_ENGINES: dict[tuple, tuple[Any, list[str]]] = {}
_ENGINES_LOCK = threading.Lock()


def torch_threads_for_this_process() -> int:
    """Intra-op threads: the cluster layer sets the worker's share of cores in the environment; default all ours."""
    configured = os.environ.get(TORCH_THREADS_ENV)
    if configured:
        return max(1, int(configured))
    return max(1, len(os.sched_getaffinity(0)))


class DistributedDataClassifier(ABC):
    """Base of every classifier. Subclasses implement `load_model`, `load_tokenizer` and `load_labels`
    (or `load_components` when one checkpoint yields all three)."""

    default_pred_column = "pred"

    def __init__(
        self,
        *,
        filter_by: str | Sequence[str] | None = None,
        batch_size: int | None = None,
        text_field: str = "text",
        pred_column: str | None = None,
        prob_column: str | None = None,
        max_chars: int = 2000,
        max_tokens: int = 512,
        device: str = "auto",
        autocast: bool = True,
        token_budget: int | None = None,
    ):
        from hpc_classify.config import ClassifierSettings

        # Validation shared with the CLI/YAML path.
        ClassifierSettings(
            filter_by=filter_by,
            text_field=text_field,
            max_chars=max_chars,
            max_tokens=max_tokens,
            batch_size=batch_size,
            token_budget=token_budget,
            device=device,
            autocast=autocast,
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
        self.token_budget = token_budget
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

    def settings_snapshot(self) -> dict[str, Any]:
        """The classifier's public, plain-valued attributes (a subclass's own, such as a model path, included)."""
        plain = (str, int, float, bool, type(None), list, tuple)
        snapshot = {k: v for k, v in vars(self).items() if not k.startswith("_") and isinstance(v, plain)}
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", **snapshot}

    def identity(self) -> dict[str, Any]:
        """What makes two loaded engines interchangeable: the key of the per-process cache."""
        output_only = ("filter_by", "text_field", "pred_column", "prob_column")
        return {k: v for k, v in self.settings_snapshot().items() if k not in output_only}

    def fingerprint(self) -> dict[str, Any]:
        """Everything that changes the output of a run (stored with the outputs to refuse mixed resumes)."""
        return {**self.settings_snapshot(), "labels": self.labels}

    # -- labels and validation ---------------------------------------------------------------
    @property
    def labels(self) -> list[str]:
        if self._labels is None:
            self._labels = list(self.load_labels())
            self._check_filter_labels(self._labels)
        return self._labels

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
        return self.batch_size * self.max_tokens if self.batch_size else None

    # -- the engine, once per process ----------------------------------------------------------
    def _engine(self) -> tuple[Any, list[str]]:
        key = tuple(sorted((k, repr(v)) for k, v in self.identity().items()))
        with _ENGINES_LOCK:
            cached = _ENGINES.get(key)
            if cached is None:
                cached = self._build_engine()
                _ENGINES[key] = cached
        return cached

    def _build_engine(self) -> tuple[Any, list[str]]:
        from hpc_classify.classifiers.adapters import as_logits_module
        from hpc_classify.engine import InferenceEngine, configure_threads, resolve_device

        device = resolve_device(self.device)
        if device.type == "cpu":
            configure_threads(torch_threads_for_this_process())
        components = self.load_components(device)
        model = as_logits_module(components.model)
        self._labels = list(components.labels)
        self._check_filter_labels(self._labels)
        engine = InferenceEngine(
            model,
            components.tokenizer,
            device=device,
            autocast=self.autocast,
            max_chars=self.max_chars,
            max_tokens=self.max_tokens,
            token_budget=self.effective_token_budget(),
        )
        logger.info("loaded %s on %s (%d labels)", type(self).__name__, device, len(self._labels))
        return engine, self._labels

    # -- classifying pandas frames ------------------------------------------------------------
    def predict_frame(self, frame: pd.DataFrame, *, source: str = "<dataframe>") -> pd.DataFrame:
        """Return `frame` with the prediction column (and the probability column when asked) added."""
        texts = self._texts(frame, source)
        engine, labels = self._engine()
        probabilities = engine.predict_proba(texts)
        result = frame.copy()
        names = np.asarray(labels, dtype=object)
        result[self.pred_column] = pd.Series(
            names[probabilities.argmax(axis=1)] if len(texts) else [], index=frame.index, dtype="str"
        )
        if self.prob_column:
            result[self.prob_column] = pd.Series(
                [row.tolist() for row in probabilities], index=frame.index, dtype=object
            )
        return result

    def filter_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        if not self.filter_by:
            return frame
        self.labels  # noqa: B018 -- validates filter_by against the model's labels (once)
        return frame[frame[self.pred_column].isin(self.filter_by)]

    def classify_frame(self, frame: Any, *, source: str = "<dataframe>") -> Any:
        """Predict and filter one partition: a pandas frame, or a cuDF frame on the GPU backend."""
        if type(frame).__module__.startswith("cudf"):
            # The tokenizer needs Python strings anyway: classify on the host, hand cuDF back. (GPU-only path.)
            import cudf

            return cudf.from_pandas(self.classify_frame(frame.to_pandas(), source=source))
        return self.filter_frame(self.predict_frame(frame, source=source))

    def _texts(self, frame: pd.DataFrame, source: str) -> list[str]:
        if self.text_field not in frame.columns:
            raise InputFileError(
                source,
                f"no text column {self.text_field!r} (columns: {', '.join(map(str, frame.columns))})",
                hint="set text_field / --text-field to the column that holds the documents",
            )
        column = frame[self.text_field]
        bad = [i for i, value in enumerate(column.tolist()) if not isinstance(value, str)]
        if bad:
            if source == "<dataframe>" and "file_name" in frame.columns:
                source = str(frame["file_name"].iloc[bad[0]])  # read with add_filename=True
            raise InputFileError(
                source,
                f"{len(bad)} row(s) whose {self.text_field!r} is missing or not a string, first at row {bad[0] + 1}",
                hint="fix or drop those rows (the driver's --on-bad-row skip quarantines them)",
            )
        return column.tolist()

    # -- the Dask dataframe API ---------------------------------------------------------------
    def __call__(self, dataset: DocumentDataset) -> DocumentDataset:
        """Classify lazily: a map over partitions; the model loads once per worker process."""
        meta = dataset.df._meta.copy()
        meta[self.pred_column] = pd.Series([], dtype="str")
        if self.prob_column:
            meta[self.prob_column] = pd.Series([], dtype=object)
        return dataset.map_partitions(self.classify_frame, meta=meta)
