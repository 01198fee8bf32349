"""An --input root that would rename outputs already planned: refused before anything is written.

An output's name (and its marker's) is the input's path relative to the --input directory given. A
rerun into the same --output with another root over the same files (`--input corpus`, then
`--input corpus/en`, or the other way round) would give them other names: the files done under the old
names would be classified again under the new ones beside them (every document twice), and a new name
could be an old name of another file (`corpus/en/x.jsonl` was `x.jsonl`; now `corpus/x.jsonl` is), whose
marker would then be taken for it. So a file that the stored plan names under one relpath and this
listing under another stops the run, naming both roots, one file with both output names, and the remedy.
Files are matched by the real path of their directory, so the same corpus reached through a link or
another mount path counts as the same files.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

from hpc_classify.errors import ConfigError
from hpc_classify.io.discovery import InputFile, output_relpath


def refuse_renamed_outputs(
    plan: dict[str, Any] | None,
    files: Sequence[InputFile],
    inputs: Sequence[str],
    output_dir: str,
    output_format: str,
) -> None:
    """ConfigError when a file of the stored `plan` gets another relpath in this listing (`files`)."""
    if not plan:
        return
    real = _RealPaths()
    before = {real.of(e["path"]): e["relpath"] for e in plan.get("files", []) if e.get("path")}
    if not before:  # a plan of an older version, without paths: the markers' input_path decides
        return
    renamed = [
        (f, before[key]) for f in files if (key := real.of(f.path)) in before and before[key] != f.relpath
    ]
    if not renamed:
        return
    example, old = renamed[0]
    new_out = output_relpath(example.relpath, output_format)
    old_out = output_relpath(old, output_format)
    raise ConfigError(
        f"--input {shown_specs(inputs)} names {len(renamed)} file(s) that the last run into {output_dir} listed "
        f"under another input root (--input {shown_specs(plan.get('inputs') or ['?'])}), so their outputs "
        f"would get other names: e.g. {example.path} is {old_out} in that run's plan, now it would be "
        f"{new_out}. Classified again under the new names, their documents would be written twice, and a "
        "new name that was another file's would be taken as done for it",
        hint="give the original --input to resume this output directory, or a new --output for this --input",
    )


# Specs named in a message: an --input-list of 20,000 shards would otherwise fill the log with one line.
SPECS_SHOWN = 5


def shown_specs(specs: Iterable[str]) -> str:
    """The specs, absolute, space-separated; past SPECS_SHOWN, the first ones and how many more."""
    specs = [os.path.abspath(spec) for spec in specs]
    more = f" (and {len(specs) - SPECS_SHOWN} more)" if len(specs) > SPECS_SHOWN else ""
    return " ".join(specs[:SPECS_SHOWN]) + more


class _RealPaths:
    """A file's path with its directory's real path (symbolic links, `..` resolved): one realpath per
    directory, not per file (100,000 inputs lie in a few directories)."""

    def __init__(self) -> None:
        self._dirs: dict[str, str] = {}

    def of(self, path: str) -> str:
        directory, name = os.path.split(path)
        if directory not in self._dirs:
            self._dirs[directory] = os.path.realpath(directory)
        return os.path.join(self._dirs[directory], name)
