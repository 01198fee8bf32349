"""Errors users see. Each says what was wrong, where, and what to do about it."""

from __future__ import annotations


class HpcClassifyError(Exception):
    """Base of every error this package raises on purpose (the CLI prints these without a traceback)."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\nHINT: {hint}")

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


class InputsChangedError(HpcClassifyError):
    """Inputs that changed (size, mtime or content) after their completion marker was written."""
