"""'unrecognized arguments' with a "did you mean" for each mistyped long flag (argparse in Python < 3.14
suggests nothing for flags), and ours for the flags of NeMo Curator's classifier scripts."""

from __future__ import annotations

import argparse
import difflib

# NeMo Curator 0.7.1's classifier scripts (nemo_curator/scripts/classifiers, script_utils.ArgumentHelper):
# their flags that have another name here, or none. A close spelling guess would mislead
# (--output-data-dir: "did you mean --output-format?").
NEMO_SCRIPT_FLAGS = {
    "--input-data-dir": "--input DIR",
    "--output-data-dir": "--output DIR",
    "--input-text-field": "--text-field",
    "--output-file-type": "--output-format",
    "--input-file-type": "nothing: each file's suffix says its format",
    "--input-file-extension": "nothing: each file's suffix says its format",
    "--pretrained-model-name-or-path": "--model",
    "--autocast": "nothing (on by default; --no-autocast turns it off)",
    "--max-mem-gb-classifier": "max_mem_gb in a YAML config's classifier entry",
    "--n-workers": "--workers",
    "--rmm-pool-size": "nothing: get_client(rmm_pool_size=...) in Python",
    "--enable-spilling": "nothing: get_client(enable_spilling=...) in Python",
    "--set-torch-to-use-rmm": "nothing: get_client(set_torch_to_use_rmm=...) in Python",
    "--nvlink-only": "nothing: get_client(nvlink_only=...) in Python",
}


def unrecognized_arguments(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """argparse's message for `unknown`, plus `(did you mean --output?)` for the flags close to a real one,
    or what a NeMo script's flag is here."""
    flags = [s for action in parser._actions for s in action.option_strings if s.startswith("--")]
    guesses = []
    for token in unknown:
        flag = token.split("=", 1)[0]
        if flag in NEMO_SCRIPT_FLAGS:
            guesses.append(f"{flag} is NeMo Curator's script flag: here {NEMO_SCRIPT_FLAGS[flag]}")
            continue
        close = difflib.get_close_matches(flag, flags, n=1) if flag.startswith("--") else []
        if close:
            guesses.append(f"{flag}: did you mean {close[0]}?")
    message = f"unrecognized arguments: {' '.join(unknown)}"
    return f"{message} ({'; '.join(guesses)})" if guesses else message
