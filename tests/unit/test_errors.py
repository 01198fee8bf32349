"""Errors raised on Dask workers must reach the driver intact."""

from __future__ import annotations

import pickle

from hpc_classify.errors import ClusterError, InputFileError


def test_input_file_error_survives_pickling_with_file_line_and_hint():
    error = InputFileError("/data/a.jsonl", "invalid JSON", line=7, hint="use --on-bad-row skip")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputFileError
    assert (copy.path, copy.line, copy.hint) == ("/data/a.jsonl", 7, "use --on-bad-row skip")
    assert str(copy) == str(error) == "/data/a.jsonl:7: invalid JSON\nHINT: use --on-bad-row skip"


def test_plain_errors_survive_pickling():
    copy = pickle.loads(pickle.dumps(ClusterError("no worker from node3", hint="check --interface")))
    assert str(copy) == "no worker from node3\nHINT: check --interface" and copy.hint == "check --interface"
