"""The `run` flags of the engine options, built from `EngineOptions` (classifiers/engine_options.py): a new
option with a scope gets its flag, its YAML key and its place in `config_from_args` from its declaration."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from hpc_classify.classifiers.engine_options import SHARED, flag_text, option_flags, option_names


def add_engine_flags(group: Any) -> None:
    """Add one argument per scoped engine option to `group`; every default is None (not given)."""
    for name, flag in option_flags():
        if flag.turns_off:
            group.add_argument(flag_text(name), dest=name, action="store_const", const=False, help=flag.help)
            continue
        kwargs: dict[str, Any] = {"help": flag.help, "dest": name}
        if flag.choices is not None:
            kwargs["choices"] = flag.choices
        if flag.parse is not None:
            kwargs["type"] = _argparse_type(flag.parse)
        if flag.metavar is not None:
            kwargs["metavar"] = flag.metavar
        group.add_argument(flag_text(name), **kwargs)


def shared_flags_text() -> str:
    """The flags that apply to every classifier of a run, for the help text."""
    return ", ".join(flag_text(name) for name in option_names(SHARED))


def _argparse_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:  # argparse prints this message (not its generic "invalid value")
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__
    return convert
