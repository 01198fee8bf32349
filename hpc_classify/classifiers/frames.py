"""Applying a classifier to frames: pandas (`predict_frame`, `filter_frame`), a cuDF partition on the GPU
backend (`classify_frame`), a Dask `DocumentDataset` (`call`, which NeMo's `__call__` runs, through NeMo's
hooks `_run_classifier` and `_filter_documents`), and the documents of a frame (`texts`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from hpc_classify.classifiers import combine
from hpc_classify.classifiers.own_columns import check_own_columns
from hpc_classify.errors import InputFileError, MissingColumnError
from hpc_classify.io.file_rows import FILE_ROWS, FileRows
from hpc_classify.io.rows import SKIP_BAD_ROWS

if TYPE_CHECKING:
    from hpc_classify.datasets import DocumentDataset

logger = logging.getLogger(__name__)


class FrameMethods:
    """Mixed into `DistributedDataClassifier`: uses its `text_field`, `filter_by`, `filter_mask` and
    `output_meta`; prediction goes through `combine.predict_together` (looked up at call time)."""

    def predict_frame(self, frame: pd.DataFrame, *, source: str = "<dataframe>") -> pd.DataFrame:
        """Return `frame` with this classifier's output columns added."""
        return combine.predict_together([self], frame, source=source)

    def filter_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        return frame[self.filter_mask(frame)] if self.filter_by is not None else frame

    def classify_frame(self, frame: Any, *, source: str = "<dataframe>") -> Any:
        """Predict and filter one partition: a pandas frame, or a cuDF frame on the GPU backend."""
        return _on_host(frame, lambda host: self.filter_frame(self.predict_frame(host, source=source)))

    def texts(self, frame: pd.DataFrame, source: str) -> list[str]:
        """The frame's documents, or InputFileError naming the source when a row has no string text."""
        if self.text_field not in frame.columns:
            raise self._missing_text_column(source, frame.columns)
        column = frame[self.text_field]
        bad = [i for i, value in enumerate(column.tolist()) if not isinstance(value, str)]
        if bad:
            name, row = _bad_row(frame, bad[0], source)
            raise InputFileError(
                name,
                f"{len(bad)} row(s) whose {self.text_field!r} is missing or not a string, first at {row}",
                hint=f"fix or drop those rows; a run quarantines them with {SKIP_BAD_ROWS}",
            )
        return column.tolist()

    def _missing_text_column(self, source: str, columns: Any) -> MissingColumnError:
        """A KeyError too, as pandas' (NeMo's) for a missing column."""
        return MissingColumnError(
            source,
            f"no text column {self.text_field!r} (columns: {', '.join(map(str, columns))})",
            hint="set text_field / --text-field to the column that holds the documents",
        )

    # -- the Dask dataframe API ---------------------------------------------------------------
    def call(self, dataset: DocumentDataset) -> DocumentDataset:
        """Classify (and filter) lazily: a map over partitions; the model loads once per worker process.
        `classifier(dataset)` runs this after checking the dataset's backend (`NemoModule.__call__`).

        As NeMo's `DistributedDataClassifier.call`: `self._run_classifier(dataset)`, then, when `filter_by` is
        set, `self._filter_documents(result)`, so that a subclass overriding either hook changes what `call`
        returns. A class overriding neither predicts and filters each partition in one step."""
        check_own_columns(self)
        cls = type(self)
        if cls._run_classifier is FrameMethods._run_classifier and (
            self.filter_by is None or cls._filter_documents is FrameMethods._filter_documents
        ):
            self.pin_models()  # here, once: each worker process resolving `main` itself could find another commit
            return dataset.map_partitions(self.classify_frame, meta=self._predicted_meta(dataset))
        result = self._run_classifier(dataset)
        if self.filter_by is not None:
            return self._filter_documents(result)
        return result

    def _run_classifier(self, dataset: DocumentDataset) -> DocumentDataset:
        """NeMo's hook: `dataset` with this classifier's output columns added, every row kept (lazy)."""
        self.pin_models()
        return dataset.map_partitions(self._predict_partition, meta=self._predicted_meta(dataset))

    def _filter_documents(self, dataset: DocumentDataset) -> DocumentDataset:
        """NeMo's hook: the rows whose `pred_column` is one of `filter_by` (NeMo's `isin`; `filter_by` is
        always a list of labels here: a string is read as one label), by `filter_mask` (lazy)."""
        return dataset.map_partitions(self._filter_partition, meta=dataset.df._meta)

    def _predict_partition(self, frame: Any) -> Any:
        return _on_host(frame, self.predict_frame)

    def _filter_partition(self, frame: Any) -> Any:
        return _on_host(frame, self.filter_frame)

    def _predicted_meta(self, dataset: DocumentDataset) -> pd.DataFrame:
        meta = dataset.df._meta.copy()
        if type(self).texts is FrameMethods.texts and self.text_field not in meta.columns:
            # Now, as NeMo's df[text_field] fails when the classifier is called, not at compute
            raise self._missing_text_column("<dataset>", meta.columns)
        replaced = [column for column in self.output_meta() if column in meta.columns]
        if replaced:  # as NeMo, the column is replaced; but said (an earlier run's labels are lost)
            logger.warning(
                "%s replaces the dataset's column(s) %s with its predictions; HINT: to keep both, give the "
                "predictions other names (pred_column= / prob_column= when creating the classifier)",
                type(self).__name__,
                ", ".join(map(repr, replaced)),
            )
        for column, dtype in self.output_meta().items():
            meta[column] = pd.Series([], dtype=dtype)
        return meta


def _on_host(frame: Any, step: Callable[[pd.DataFrame], pd.DataFrame]) -> Any:
    """`step` on a pandas frame; a cuDF frame (GPU backend) goes through it on the host and comes back as cuDF
    (the tokenizer needs Python strings anyway)."""
    if type(frame).__module__.startswith("cudf"):
        import cudf  # GPU-only path

        return cudf.from_pandas(step(frame.to_pandas()))
    return step(frame)


def _bad_row(frame: pd.DataFrame, position: int, source: str) -> tuple[str, str]:
    """The file and the row to name for the row at `position`. A partition of a dataset read from files
    carries each row's file and row there (io/file_rows): the file's row is named, not the partition's
    (counting within a piece of a file, or files packed in one partition, named the wrong row)."""
    rows = frame.attrs.get(FILE_ROWS)
    ours = isinstance(rows, FileRows) and not rows.renumbered(frame)
    found = rows.locate(frame.index[position]) if ours else None
    if found is not None:
        path, row = found
        return (path if source == "<dataframe>" else source), f"row {row + 1}"
    if source != "<dataframe>":  # the caller's frame is that file
        return source, f"row {position + 1}"
    if "file_name" in frame.columns:  # read with add_filename=True
        source = str(frame["file_name"].iloc[position])
    return source, f"row {position + 1} of the partition"
