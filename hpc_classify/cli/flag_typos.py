"""'unrecognized arguments' with a "did you mean" for each mistyped long flag (argparse in Python < 3.14
suggests nothing for flags)."""

from __future__ import annotations

import argparse
import difflib


def unrecognized_arguments(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """argparse's message for `unknown`, plus `(did you mean --output?)` for the flags close to a real one."""
    flags = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
    guesses = []
    for token in unknown:
        flag = token.split("=", 1)[0]
        close = difflib.get_close_matches(flag, flags, n=1) if flag.startswith("--") else []
        if close:
            guesses.append(f"{flag}: did you mean {close[0]}?")
    message = f"unrecognized arguments: {' '.join(unknown)}"
    return f"{message} ({'; '.join(guesses)})" if guesses else message
