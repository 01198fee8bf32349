"""Honest errors: which errors are retried, the reason recorded, and unwritable outputs named by path."""

from __future__ import annotations

import errno
import os
import pickle

import pytest
from mounts import freezable_directory

from hpc_classify.driver.failures import failure_reason, is_retryable
from hpc_classify.errors import ClusterError, ConfigError, InputFileError, OutputWriteError
from hpc_classify.io.writers import write_json_atomically


def test_project_errors_are_not_retried_infrastructure_errors_are():
    assert not is_retryable(InputFileError("/d/a.jsonl", "invalid JSON", line=3))
    assert not is_retryable(ConfigError("bad setting"))
    assert is_retryable(ClusterError("scheduler gone"))
    assert is_retryable(OSError(errno.EIO, "I/O error"))
    assert is_retryable(TimeoutError("timed out"))


def test_failure_reason_names_worker_deaths_and_project_errors():
    assert "died (KilledWorker) in 2 of 3 attempt(s)" in failure_reason(RuntimeError("x"), 3, 2)
    assert "not retried" in failure_reason(InputFileError("/d/a.jsonl", "bad"), 1, 0)
    assert failure_reason(OSError("x"), 3, 0) == "still failing after 3 attempt(s)"


def test_output_write_error_pickles_with_path_errno_and_exit_code():
    error = OutputWriteError("/out/a.jsonl", "No space left on device", errno=errno.ENOSPC)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is OutputWriteError and copy.exit_code == 4
    assert (copy.path, copy.errno) == ("/out/a.jsonl", errno.ENOSPC)
    assert str(copy).startswith("cannot write /out/a.jsonl: No space left on device\nHINT: free space")


def test_unwritable_directory_raises_output_write_error_and_leaves_no_temp(tmp_path):
    # Read-only for whoever runs it: mode 0555, or a read-only tmpfs as root (root writes through 0555).
    with freezable_directory(tmp_path / "out") as freeze:
        freeze()
        with pytest.raises(OutputWriteError, match="cannot write .*a.json"):
            write_json_atomically(str(tmp_path / "out" / "a.json"), {"a": 1})
        assert os.listdir(tmp_path / "out") == []
