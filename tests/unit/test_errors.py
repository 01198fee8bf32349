"""Errors raised on Dask workers must reach the driver intact."""

from __future__ import annotations

import pickle

import pytest

from hpc_classify.errors import (
    ClusterError,
    ConfigError,
    DataLayoutError,
    InputFileError,
    MissingColumnError,
    MissingInputFileError,
    ModelAccessError,
    ModelNotAvailableError,
    NotADirectoryInputError,
    UnexpectedArgumentError,
)


def test_input_file_error_survives_pickling_with_file_line_and_hint():
    error = InputFileError("/data/a.jsonl", "invalid JSON", line=7, hint="use --on-bad-row skip")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputFileError
    assert (copy.path, copy.line, copy.hint) == ("/data/a.jsonl", 7, "use --on-bad-row skip")
    assert str(copy) == str(error) == "/data/a.jsonl:7: invalid JSON\nHINT: use --on-bad-row skip"


def test_plain_errors_survive_pickling():
    copy = pickle.loads(pickle.dumps(ClusterError("no worker from node3", hint="check --interface")))
    assert str(copy) == "no worker from node3\nHINT: check --interface" and copy.hint == "check --interface"


@pytest.mark.parametrize(
    ("error", "builtins"),
    [
        (ConfigError("bad blocksize", hint="e.g. 1gb"), (ValueError,)),
        (DataLayoutError("several file types", hint="keep_extensions"), (ValueError, RuntimeError)),
        (UnexpectedArgumentError("does not take lines", hint="columns="), (ValueError, TypeError)),
        (MissingColumnError("/d/a.jsonl", "no column 'x'", hint="fix columns="), (ValueError, KeyError)),
        (MissingInputFileError("/d/a.jsonl", hint="check the path"), (ValueError, FileNotFoundError)),
        (NotADirectoryInputError("/d/a.jsonl", hint="a directory"), (ValueError, NotADirectoryError)),
        (ModelNotAvailableError("model 'x' is not available", hint="fetch-models"), (OSError,)),
        (ModelAccessError("LlamaGuard is not available", hint="log in"), (OSError, PermissionError)),
    ],
)
def test_nemo_builtin_types_survive_pickling_with_message_and_hint(error, builtins):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error) and isinstance(copy, builtins)
    assert str(copy) == str(error) and "\nHINT: " in str(copy) and copy.hint == error.hint
    assert not str(copy).startswith(("'", "[Errno"))  # neither KeyError's quotes nor OSError's prefix


def test_missing_input_file_error_is_a_complete_file_not_found_error():
    error = pickle.loads(pickle.dumps(MissingInputFileError("/d/a.jsonl")))
    assert (error.errno, error.filename, error.path) == (2, "/d/a.jsonl", "/d/a.jsonl")
    assert str(error) == "/d/a.jsonl: no such file" and error.one_line() == "/d/a.jsonl: no such file"
    error = pickle.loads(pickle.dumps(NotADirectoryInputError("/d/a.jsonl")))
    assert (error.errno, error.filename, str(error)) == (20, "/d/a.jsonl", "/d/a.jsonl: not a directory")


def test_model_errors_are_nemos_os_errors_and_still_ours():
    """NeMo raises OSError (transformers' from_pretrained) for a model it cannot find and PermissionError for
    LlamaGuard: `except OSError` catches ours too, which keep their message, hint and the CLI's exit code."""
    error = ModelNotAvailableError("classifier 'x' is not available", hint="run fetch-models")
    assert isinstance(error, OSError) and not isinstance(error, PermissionError)
    assert (error.errno, error.strerror, error.filename) == (None, None, None)
    assert (
        error.one_line() == "classifier 'x' is not available; HINT: run fetch-models" and error.exit_code == 2
    )
    gated = pickle.loads(pickle.dumps(ModelAccessError("LlamaGuard is not available", hint="log in")))
    assert isinstance(gated, ModelNotAvailableError) and isinstance(gated, PermissionError)
    assert gated.one_line() == "LlamaGuard is not available; HINT: log in" and gated.exit_code == 2
    try:
        raise gated
    except OSError as caught:  # a NeMo user's handler
        assert caught is gated
