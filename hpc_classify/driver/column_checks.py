"""Settings that name columns the inputs do not have are mistakes: one error (exit 2) before anything is
written or submitted, naming the columns the files do have, instead of one failed file per input. Input
columns that the predictions would replace are said (a warning).

The checks look at the same cheap sample: the first SAMPLE_ROWS rows (a Parquet file: its schema) of the
first SAMPLE_FILES files."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from hpc_classify.driver.plan import PlannedFile
from hpc_classify.errors import ConfigError
from hpc_classify.io.columns import ColumnSample, sample_columns

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 1000  # JSONL rows looked at per sampled file
SAMPLE_FILES = 5  # files sampled (empty files have no rows to judge by)


def check_text_fields(classifiers: Sequence[Any], files: Sequence[PlannedFile]) -> None:
    """ConfigError when the first input file with rows has no row with a classifier's text field."""
    fields = list(dict.fromkeys(c.text_field for c in classifiers if getattr(c, "text_field", None)))
    # Every row needs its text: the first file with rows is enough to judge by.
    planned, sample = next(_samples(files), (None, None))
    if sample is None:
        return  # no rows to judge by: reading the files reports what is wrong with them
    missing = [field for field in fields if field not in sample.columns]
    if not missing:
        return
    field = missing[0]
    rows = "no row" if sample.whole_file else f"none of the first {sample.rows} rows"
    close = difflib.get_close_matches(field, sample.columns, n=1)
    raise ConfigError(
        f"--text-field {field!r}: {rows} of {planned.path} has that field "
        f"(its fields: {', '.join(sample.columns)})",
        hint=f"did you mean --text-field {close[0]}?"
        if close
        else "set --text-field (text_field in a YAML config) to the field that holds the documents",
    )


def check_keep_columns(
    keep_columns: Sequence[str] | None, key_column: str | None, files: Sequence[PlannedFile]
) -> None:
    """A kept column in none of the sampled rows of any sampled file: a ConfigError where the sample was every
    row of every input (the column is nowhere), else a warning (it may first appear later: a corpus whose
    first files come from a source without it). A column that only some rows (or files) have is fine: where
    a JSONL row lacks it, it is written as null."""
    if not keep_columns:
        return
    sampled = list(_samples(files))
    if not sampled:
        return
    every_row = len(files) <= SAMPLE_FILES and all(sample.whole_file for _, sample in sampled)
    seen = list(dict.fromkeys(c for _, sample in sampled for c in sample.columns))
    missing = [column for column in keep_columns if column not in seen]
    if not missing:
        return
    column = missing[0]
    flag = "--key-column" if column == key_column else "--keep-columns"
    rows = sum(sample.rows for _, sample in sampled)
    where = ", ".join(planned.path for planned, _ in sampled)
    close = difflib.get_close_matches(column, seen, n=1)
    remedy = f"fix {flag} ({flag[2:].replace('-', '_')} in a YAML config), or leave the column out"
    problem = ConfigError(
        f"{flag} {column!r}: none of the {rows} rows {'of' if every_row else 'sampled from'} {where} has that "
        f"column (their columns: {', '.join(seen)})",
        hint=f"did you mean {close[0]!r}? {remedy}" if close else remedy,
    )
    if every_row:
        raise problem
    logger.warning("%s; the run goes on: rows without it get null there", problem.one_line())


def warn_prediction_columns(
    classifiers: Sequence[Any], keep_columns: Sequence[str] | None, files: Sequence[PlannedFile]
) -> None:
    """A warning naming the input columns that a classifier's output replaces in the outputs (a corpus
    labelled by an earlier run has `domain_pred`): not refused, re-labelling a corpus is fine, but said.
    Under keep_columns only the kept ones: the others are not written anyway."""
    outputs = [c for classifier in classifiers for c in classifier.output_columns()]
    for planned, sample in _samples(files):
        written = sample.columns if keep_columns is None else [c for c in sample.columns if c in keep_columns]
        replaced = [c for c in outputs if c in written]
        if replaced:
            logger.warning(
                "%s has the column(s) %s, which the predictions replace in the outputs; HINT: to keep both, "
                "give the predictions other names (--pred-column / --prob-column, pred_column / prob_column "
                "in a YAML config's classifiers list or a classifier's arguments)",
                planned.path,
                ", ".join(map(repr, replaced)),
            )
            return  # one file named is enough: a corpus's files share their columns


def _samples(files: Sequence[PlannedFile]) -> Iterator[tuple[PlannedFile, ColumnSample]]:
    """(file, its sample) for each of the first SAMPLE_FILES files that has rows."""
    for planned in files[:SAMPLE_FILES]:
        sample = sample_columns(planned.path, SAMPLE_ROWS)
        if sample.rows:
            yield planned, sample
