"""Refuse two inputs that would write one output file (the one place this rule lives).

Outputs are named after their inputs (discovery.output_relpath), so `part-00.jsonl` and `part-00.parquet`,
or `a.jsonl` and `a.jsonl.gz` with Parquet output, map to one name: the second write would replace the
first and both completion markers would point at what is left. Such inputs are refused before anything is
written, naming both and the remedy, rather than renamed by a rule a user would have to learn.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpc_classify.errors import ConfigError

CLASH_HINT = (
    "rename one of them (each output takes its input's name with the output format's suffix), "
    "or classify them into different --output directories"
)


def find_output_clashes(sources: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """`(first input, other input, output)` for every input whose output name an earlier input already
    takes; `sources` are `(input, output name)` pairs. The same input listed twice is no clash."""
    owner: dict[str, str] = {}
    clashes = []
    for source, output in sources:
        first = owner.setdefault(output, source)
        if first != source:
            clashes.append((first, source, output))
    return clashes


def refuse_output_clashes(sources: Iterable[tuple[str, str]], *, hint: str = CLASH_HINT) -> None:
    """ConfigError naming the first two inputs that share an output (and how many more clashes there are)."""
    clashes = find_output_clashes(sources)
    if not clashes:
        return
    first, other, output = clashes[0]
    more = f" (and {len(clashes) - 1} more input(s) like these)" if len(clashes) > 1 else ""
    raise ConfigError(f"inputs {first} and {other} would both write the output {output!r}{more}", hint=hint)
