"""Which run owns an output directory: the one whose fingerprint `<output>/_run.json` holds.

The output lock fences drivers, not their tasks: a task of a killed driver keeps running on a joined cluster
(--scheduler-file, `client=`) and, in jobqueue mode, until its workers' death timeout. Should a newer run with
other settings (`--overwrite`) have taken the directory meanwhile, that task must not write its output or
marker there. So two checks, both against the fingerprint:

- a task re-reads `_run.json` just before each rename into a final name (output, quarantine, marker, piece
  files) and refuses with `RunSupersededError` when the directory belongs to another fingerprint
  (`fence`): the temp file is removed, nothing appears under a final name. One small read per file written.
- a completion marker counts as done only when written under the run's fingerprint
  (`written_under_other_settings`): the driver classifies such a file again, `status` and the report count it
  as remaining. This catches what the fence cannot: a task that passed its check just before the newer run
  wrote `_run.json`.

An --overwrite writes `_run.json` before it discards the old run's files (driver/fingerprint.py), so the fence
holds throughout the discard.

A directory without `_run.json` has no owner to defend (the per-file functions called on their own): writes go
ahead.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence

from hpc_classify.errors import OutputDirectoryError
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)

RUN_FILE = "_run.json"


class RunSupersededError(OutputDirectoryError):
    """A task of an earlier run found the output directory owned by a newer run with other settings. Not
    retried: the same attempt finds the same owner."""

    def __init__(self, path: str, output_dir: str, stored: str | None, fingerprint: str):
        self.path = path
        super().__init__(
            f"{path}: not written: a newer run with other settings owns {output_dir} "
            f"(fingerprint {stored!r} in its {RUN_FILE}, this task's {fingerprint!r}); this task is of an "
            "earlier run, stopped or killed, whose work was left running",
            hint="nothing to do: the run that owns the directory classifies this file itself",
        )


def stored_fingerprint(output_dir: str) -> str | None:
    """The fingerprint in `<output_dir>/_run.json`, or None when there is none. An unreadable file (not
    JSON, no fingerprint) is returned as "" so that it matches no run's fingerprint; an OSError other than
    a missing file propagates (infrastructure: retried)."""
    try:
        with open(os.path.join(output_dir, RUN_FILE), "rb") as f:
            data = json.loads(f.read())
    except FileNotFoundError:
        return None
    except ValueError:
        return ""
    fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
    return fingerprint if isinstance(fingerprint, str) else ""


def check_run_owner(output_dir: str, fingerprint: str, path: str) -> None:
    """RunSupersededError, naming `path`, when `output_dir` belongs to a run of another fingerprint."""
    stored = stored_fingerprint(output_dir)
    if stored is not None and stored != fingerprint:
        raise RunSupersededError(path, output_dir, stored, fingerprint)


def fence(output_dir: str, fingerprint: str, path: str) -> Callable[[], None]:
    """The check a task runs just before renaming `path` into place (`io.writers.write_atomically`'s
    `before_rename`), or before removing a file of its own name."""
    return lambda: check_run_owner(output_dir, fingerprint, path)


def written_under_other_settings(marker_fingerprint: str, fingerprint: str) -> bool:
    """The one test of a marker against a run: written under another fingerprint, it does not make its file
    done (a task of an earlier run finished after a newer run took the directory)."""
    return marker_fingerprint != fingerprint


def say_classified_again(relpaths: Sequence[str]) -> None:
    """The run start's warning for the files whose marker was written under other settings."""
    if not relpaths:
        return
    named = first_and_count(relpaths)
    logger.warning(
        "%d file(s) whose marker was written under other settings (a task of an earlier, killed run): "
        "classified again: %s",
        len(relpaths),
        named,
    )
