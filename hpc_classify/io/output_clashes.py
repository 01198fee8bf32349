"""Refuse two inputs that would write one output file (the one place this rule lives).

Outputs are named after their inputs (discovery.output_relpath), so `part-00.jsonl` and `part-00.parquet`,
or `a.jsonl` and `a.jsonl.gz` with Parquet output, map to one name: the second write would replace the
first and both completion markers would point at what is left. Such inputs are refused before anything is
written, naming both and the remedy, rather than renamed by a rule a user would have to learn.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from hpc_classify.errors import ConfigError

CLASH_HINT = (
    "rename one of them (each output takes its input's name with the output format's suffix), "
    "or classify them into different --output directories"
)


class Clash(NamedTuple):
    first: str  # the input whose output is `output`
    other: str  # an input whose output is `output` too, or lies under it (`as_directory`)
    output: str
    as_directory: bool = False


def find_output_clashes(sources: Iterable[tuple[str, str]]) -> list[Clash]:
    """Every input whose output name an earlier input already takes, or whose output lies under a directory
    that another input's output file takes; `sources` are `(input, output name with "/" separators)` pairs.
    The same input listed twice is no clash."""
    owner: dict[str, str] = {}
    clashes = []
    for source, output in sources:
        first = owner.setdefault(output, source)
        if first != source:
            clashes.append(Clash(first, source, output))
    # `x.parquet` writes the file `x.jsonl`, which `x.jsonl/y.jsonl` needs as a directory: whichever came
    # second failed (FileExistsError, NotADirectoryError) after it was classified.
    for output, source in owner.items():
        parts = output.split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory in owner:
                clashes.append(Clash(owner[directory], source, directory, as_directory=True))
    return clashes


def refuse_output_clashes(sources: Iterable[tuple[str, str]], *, hint: str = CLASH_HINT) -> None:
    """ConfigError naming the first two inputs that clash (and how many more clashes there are)."""
    clashes = find_output_clashes(sources)
    if not clashes:
        return
    first, other, output, as_directory = clashes[0]
    more = f" (and {len(clashes) - 1} more input(s) like these)" if len(clashes) > 1 else ""
    if as_directory:
        raise ConfigError(
            f"input {first} would write the output file {output!r}, which input {other} needs as a "
            f"directory{more}",
            hint=hint,
        )
    raise ConfigError(f"inputs {first} and {other} would both write the output {output!r}{more}", hint=hint)
