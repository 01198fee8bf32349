"""One input file, start to finish: the unit of work a Dask task runs. A plain function, no Dask.

Order matters for resumability: the output (and quarantine) are written atomically first, the completion
marker last. A crash at any point leaves either nothing under a final name, or an output without a
marker, which the next run redoes; a marker therefore always stands for a complete output.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from hpc_classify.cluster.slurm_env import current_node_name
from hpc_classify.config import ClassifierSettings
from hpc_classify.io.discovery import InputFile, output_relpath
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker
from hpc_classify.io.readers import BadRow, read_documents
from hpc_classify.io.writers import write_frame, write_jsonl_records

logger = logging.getLogger(__name__)

QUARANTINE_SUFFIX = ".quarantine.jsonl"


def quarantine_relpath(out_relpath: str) -> str:
    """`dir/_<output name>.quarantine.jsonl`: beside the output, but "_"-prefixed so that input discovery
    skips it when this output directory is the input of a next classification stage."""
    directory, name = os.path.split(out_relpath)
    return os.path.join(directory, f"_{name}{QUARANTINE_SUFFIX}")


def classify_file(
    input_file: InputFile,
    output_dir: str,
    settings: ClassifierSettings,
    *,
    output_format: str,
    on_bad_row: str,
    fingerprint: str,
    worker: str = "",
) -> dict[str, Any]:
    """Classify `input_file` into `output_dir` and return its completion marker as a dict.

    Labels are counted over every good row (before filtering); rows_out is what was written after
    `filter_by`. Bad rows raise InputFileError (on_bad_row="error") or go to a quarantine file ("skip").
    """
    # Imported here: the driver process imports this module without loading torch/transformers.
    from hpc_classify.classifiers import get_cached_classifier

    started = time.time()
    stat = os.stat(input_file.path)
    result = read_documents(input_file.path, text_field=settings.text_field, on_bad_row=on_bad_row)
    classifier = get_cached_classifier(settings)
    predicted = classifier.predict_frame(result.frame, source=input_file.path)
    label_counts = count_labels(predicted[classifier.pred_column], classifier.labels)
    kept = classifier.filter_frame(predicted)

    out_relpath = output_relpath(input_file.relpath, output_format)
    output_path = os.path.abspath(os.path.join(output_dir, out_relpath))
    write_frame(kept, output_path, output_format)
    quarantine = _write_quarantine(os.path.join(output_dir, quarantine_relpath(out_relpath)), result.bad_rows)

    finished = time.time()
    marker = CompletionMarker(
        input_path=input_file.path,
        input_size=stat.st_size,
        input_mtime=stat.st_mtime,
        output_path=output_path,
        rows_in=len(result.frame),
        rows_out=len(kept),
        rows_bad=len(result.bad_rows),
        label_counts=label_counts,
        seconds=round(finished - started, 6),
        node=current_node_name(),
        worker=worker,
        fingerprint=fingerprint,
        quarantine_path=quarantine,
        started_at=_iso(started),
        finished_at=_iso(finished),
    )
    write_marker(marker_path(output_dir, input_file.relpath), marker)
    logger.debug(
        "%s: %d rows in, %d out, %d bad", input_file.relpath, marker.rows_in, marker.rows_out, marker.rows_bad
    )
    return marker.to_dict()


def count_labels(predictions: Iterable[str], labels: list[str]) -> dict[str, int]:
    """Count of each label, every label present (zero when unused), in the model's label order."""
    counts = dict.fromkeys(labels, 0)
    for label in predictions:
        counts[label] = counts.get(label, 0) + 1
    return counts


def _write_quarantine(path: str, bad_rows: list[BadRow]) -> str | None:
    if not bad_rows:
        # A quarantine from an earlier attempt of this file (e.g. before --overwrite) would be misleading.
        if os.path.exists(path):
            os.remove(path)
        return None
    write_jsonl_records(path, ({"line": b.line, "reason": b.reason, "raw": b.raw} for b in bad_rows))
    return os.path.abspath(path)


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="milliseconds")
