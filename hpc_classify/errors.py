"""Errors users see. Each says what was wrong, where, and what to do about it."""

from __future__ import annotations

import os


class HpcClassifyError(Exception):
    """Base of every error this package raises on purpose (the CLI prints these without a traceback).

    `retryable`: False for project errors (the input, the settings: the same attempt fails the same way),
    True for infrastructure errors (cluster, I/O), which the driver retries. `exit_code`: the CLI's.
    """

    retryable = False
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHINT: {hint}")

    def one_line(self) -> str:
        """The message and its remedy on one line (what the CLI prints): `message; HINT: remedy`."""
        return " ".join(str(self).replace("\nHINT: ", "; HINT: ").split())

    def __reduce__(self):
        # Errors cross process boundaries (Dask workers -> driver); subclasses' constructors take other
        # arguments than `args`, so rebuild from the final message and attributes instead.
        return _rebuild_error, (type(self), self.args, self.__dict__)


def _rebuild_error(cls: type[HpcClassifyError], args: tuple, attributes: dict) -> HpcClassifyError:
    error = Exception.__new__(cls)
    error.args = args
    error.__dict__.update(attributes)
    return error


class InputFileError(HpcClassifyError):
    """A document file that cannot be read as it is: names the file and, where known, the line."""

    def __init__(self, path: str, message: str, *, line: int | None = None, hint: str | None = None):
        self.path = str(path)
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}", hint=hint)


class ModelNotAvailableError(HpcClassifyError):
    """A model that is neither a local directory nor in the Hugging Face cache (or the hub is unreachable)."""


class CheckpointFormatError(HpcClassifyError):
    """A checkpoint directory whose files do not match the expected layout."""


class ConfigError(HpcClassifyError):
    """Invalid settings (flags, YAML config, classifier parameters)."""


class OutputDirectoryError(HpcClassifyError):
    """The output directory belongs to another run (fingerprint mismatch) or is locked by a live run."""


class ClusterError(HpcClassifyError):
    """A Dask cluster that could not be started or joined in time."""

    retryable = True


class OutputWriteError(HpcClassifyError):
    """The output file system refuses writes (full, over quota, read-only, no permission): the run stops,
    nothing partial is left under a final name, and rerunning once it is fixed resumes."""

    exit_code = 4

    def __init__(self, path: str, reason: str, *, errno: int | None = None):
        self.path = str(path)
        self.errno = errno
        super().__init__(
            f"cannot write {self.path}: {reason}",
            hint="free space (or raise the quota, or make it writable) on the file system of "
            f"{os.path.dirname(self.path) or '.'}, then rerun the same command: it resumes where it stopped",
        )


class InputsChangedError(HpcClassifyError):
    """Inputs that changed (size, mtime or content) after their completion marker was written."""
