"""Errors users see. Each says what was wrong, where, and what to do about it.

Each is also the built-in type NeMo Curator 0.7.1 raises in the same situation (a bad argument is a
`ValueError`, an unreadable file a `ValueError` or `FileNotFoundError`, a missing column a `KeyError`, a
model that cannot be had an `OSError`), so code written against NeMo (`except ValueError:`) still catches it."""

from __future__ import annotations

import errno
import os

from hpc_classify.exit_codes import OUTPUT_UNWRITABLE, USAGE


class HpcClassifyError(Exception):
    """Base of every error this package raises on purpose (the CLI prints these without a traceback).

    `retryable`: False for project errors (the input, the settings: the same attempt fails the same way),
    True for infrastructure errors (cluster, I/O), which the driver retries. `exit_code`: the CLI's.
    """

    retryable = False
    exit_code = USAGE

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        self._text = message if hint is None else f"{message}\nHINT: {hint}"
        super().__init__(self._text)

    def one_line(self) -> str:
        """The message and its remedy on one line (what the CLI prints): `message; HINT: remedy`."""
        return " ".join(str(self).replace("\nHINT: ", "; HINT: ").split())

    def __reduce__(self):
        # Errors cross process boundaries (Dask workers -> driver); subclasses' constructors take other
        # arguments than `args`, so rebuild from the final message and attributes instead.
        return _rebuild_error, (type(self), self.args, self.__dict__)


def _rebuild_error(cls: type[HpcClassifyError], args: tuple, attributes: dict) -> HpcClassifyError:
    error = cls.__new__(cls)  # an OSError subclass needs OSError.__new__ (Exception.__new__ refuses it)
    error.args = args
    error.__dict__.update(attributes)
    return error


class InputFileError(HpcClassifyError, ValueError):
    """A document file that cannot be read as it is: names the file and, where known, the line.
    A ValueError, as pandas' and pyarrow's parse errors are."""

    def __init__(self, path: str, message: str, *, line: int | None = None, hint: str | None = None):
        self.path = str(path)
        self.line = line
        self.reason = message
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {message}", hint=hint)


class MissingColumnError(InputFileError, KeyError):
    """A file without a column that was asked for (NeMo: pandas' KeyError)."""

    __str__ = Exception.__str__  # KeyError's would quote the whole message


class _InputOSError(InputFileError):
    """An input error that is also one of OSError's subclasses (the concrete classes below), with its
    `errno`, `strerror` and `filename`, and printed as our message (not OSError's `[Errno 2] ...`)."""

    errno_code = 0
    default_message = ""

    def __new__(cls, *args, **kwargs):
        # OSError.__new__ would read (path, message) as (errno, strerror): give it nothing to parse.
        return OSError.__new__(cls)

    def __init__(self, path: str, message: str | None = None, *, hint: str | None = None):
        message = self.default_message if message is None else message
        super().__init__(path, message, hint=hint)
        self.args = (self._text,)
        self.errno, self.strerror, self.filename = self.errno_code, message, self.path

    __str__ = Exception.__str__

    def __reduce__(self):
        return _rebuild_os_error, (type(self), self.path, self.reason, self.hint)


def _rebuild_os_error(cls, path: str, reason: str, hint: str | None) -> _InputOSError:
    return cls(path, reason, hint=hint)


class MissingInputFileError(_InputOSError, FileNotFoundError):
    """An input file that does not exist (NeMo: FileNotFoundError from the reader)."""

    errno_code = errno.ENOENT
    default_message = "no such file"


class NotADirectoryInputError(_InputOSError, NotADirectoryError):
    """A path to list as a directory that is a file (NeMo: NotADirectoryError from os.scandir)."""

    errno_code = errno.ENOTDIR
    default_message = "not a directory"


class ModelNotAvailableError(HpcClassifyError, OSError):
    """A model that is neither a local directory nor in the Hugging Face cache (or the hub is unreachable).
    An OSError, as transformers' `from_pretrained` raises in NeMo for a model it cannot find."""

    __str__ = Exception.__str__  # our message, never OSError's "[Errno ...]" form


class ModelAccessError(ModelNotAvailableError, PermissionError):
    """A gated model (LlamaGuard) this account cannot have: a PermissionError, as NeMo's Aegis and instruction
    data guard classifiers raise when LlamaGuard-7b cannot be loaded."""


class CacheAccessError(ModelNotAvailableError):
    """A model the Hugging Face cache cannot serve for a local reason: its files are not readable (or its
    folders not writable) by this user, or its disk is full. The hub is not to blame, and fetching again
    does not help: the hint says what does."""


class CheckpointFormatError(HpcClassifyError):
    """A checkpoint directory whose files do not match the expected layout."""


class ConfigError(HpcClassifyError, ValueError):
    """Invalid settings (flags, YAML config, classifier parameters). A ValueError, as NeMo raises for bad
    arguments."""


class DataLayoutError(ConfigError, RuntimeError):
    """Settings that do not fit the data: several file types in one read, an unknown file type, a dataset
    of many partitions written to one file. Also a RuntimeError, which NeMo raises there."""


class UnexpectedArgumentError(ConfigError, TypeError):
    """A keyword argument this function does not take (a TypeError, as Python raises for one)."""


class ArgumentTypeError(ConfigError, TypeError):
    """An argument of the wrong type, such as input files that are neither a path nor a list of paths (a
    TypeError, as NeMo raises there)."""


class OutputDirectoryError(HpcClassifyError):
    """The output directory belongs to another run (fingerprint mismatch) or is locked by a live run."""


class ClusterError(HpcClassifyError):
    """A Dask cluster that could not be started or joined in time."""

    retryable = True


class OutputWriteError(HpcClassifyError):
    """The output file system refuses writes (full, over quota, read-only, no permission): the run stops,
    nothing partial is left under a final name, and rerunning once it is fixed resumes."""

    exit_code = OUTPUT_UNWRITABLE

    def __init__(self, path: str, reason: str, *, errno: int | None = None, hint: str | None = None):
        self.path = str(path)
        self.reason = reason
        self.errno = errno
        super().__init__(
            f"cannot write {self.path}: {reason}",
            hint=hint
            or "free space (or raise the quota, or make it writable) on the file system of "
            f"{os.path.dirname(self.path) or '.'}, then rerun the same command: it resumes where it stopped",
        )


class InputsChangedError(HpcClassifyError):
    """Inputs that changed (size, mtime or content) after their completion marker was written."""
