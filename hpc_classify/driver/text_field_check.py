"""A text field the inputs do not have is a setting mistake: one error (exit 2) before anything is written
or submitted, naming the fields the file does have, instead of one failed file per input."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

from hpc_classify.driver.plan import PlannedFile
from hpc_classify.errors import ConfigError
from hpc_classify.io.columns import sample_columns

SAMPLE_ROWS = 1000  # JSONL rows looked at in the first file that has any
SAMPLE_FILES = 5  # files tried before giving up on finding rows (empty files have none)


def check_text_fields(classifiers: Sequence[Any], files: Sequence[PlannedFile]) -> None:
    """ConfigError when the first input file with rows has no row with a classifier's text field."""
    fields = list(dict.fromkeys(c.text_field for c in classifiers if getattr(c, "text_field", None)))
    for planned in files[:SAMPLE_FILES]:
        sample = sample_columns(planned.path, SAMPLE_ROWS)
        if sample.rows:
            break
    else:
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
