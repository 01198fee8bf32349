"""`EngineOptions`: how a classifier's model runs (device, precision, text cuts, batch sizes), declared and
validated here once.

Every classifier takes each option as a constructor keyword (NeMo Curator's classifiers take some of them
positionally, with their own defaults: see `inherited_keywords`) and keeps it as a plain attribute of the
same name. The CLI's and YAML's keys come from here too: a `SHARED` option given as a flag or top-level
YAML key applies to every classifier of a run, a `PER_MODEL` one needs exactly one classifier, and an
option without a scope is a constructor argument only (a YAML `classifiers:` entry). A scoped option's
`Flag` is its `run` flag (cli/engine_flags.py builds them). A new option is a new field here (plus where it
takes effect: the engine, or the runtime).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.config import DEVICES, PRECISIONS, check_compile, check_precision, compile_from_text
from hpc_classify.errors import ConfigError
from hpc_classify.whole_numbers import is_whole_number

SHARED = "shared"
PER_MODEL = "per-model"


@dataclass(frozen=True)
class Flag:
    """How an option is given on the `run` command line: `--<name>` (dashes), or `--no-<name>` for a
    boolean that is on by default (`turns_off`)."""

    help: str
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None  # text -> value; ValueError names the accepted values
    metavar: str | None = None
    turns_off: bool = False


def _option(default: Any, scope: str | None, flag: Flag | None = None) -> Any:
    if (scope is None) != (flag is None):
        raise TypeError("an option has a flag exactly when it has a CLI/YAML scope")
    return field(default=default, metadata={"scope": scope, "flag": flag})


_POSITIVE = {"parse": int, "metavar": "N"}


@dataclass(frozen=True)
class EngineOptions:
    """The engine settings of one classifier (field order = their order in generated signatures)."""

    max_chars: int | None = _option(
        2000,
        PER_MODEL,
        Flag("characters kept per document (default: the classifier's, 2000 for domain)", **_POSITIVE),
    )
    max_tokens: int | None = _option(
        None,
        PER_MODEL,
        Flag(
            "tokens kept per document (default, as NeMo Curator: the tokenizer's model_max_length, else the "
            "model's max_position_embeddings: 512 for the DeBERTa-v3 classifiers)",
            **_POSITIVE,
        ),
    )
    batch_size: int | None = _option(
        None,
        SHARED,
        Flag(
            "NeMo Curator's documents per batch: a token budget of N x max-tokens (capped on CPU)",
            **_POSITIVE,
        ),
    )
    device: str = _option("auto", SHARED, Flag("auto (default), cpu or cuda", choices=DEVICES))
    autocast: bool = _option(True, SHARED, Flag("exact fp32 (no reduced precision)", turns_off=True))
    token_budget: int | None = _option(
        None, SHARED, Flag("padded tokens per batch (default: chosen per device)", **_POSITIVE)
    )
    # GPU memory cap of the process (NeMo's); no flag or top-level key: set per classifier in YAML.
    max_mem_gb: int | float | None = _option(None, None)
    precision: str = _option(
        "auto",
        SHARED,
        Flag(
            "auto (default): bf16 where the CPU/GPU has it natively, else fp16 on a GPU, fp32 on a CPU; fp32: exact; bf16: also where "
            "only emulated (slow); fp16: as NeMo Curator's autocast, GPU only; int8: dynamically quantized "
            "Linear layers, CPU only, not exact",
            choices=PRECISIONS,
        ),
    )
    # A speed setting: in the engine cache key, not in the fingerprint (see hpc_classify.engine.compiled).
    compile: bool | str = _option(
        "auto",
        SHARED,
        Flag(
            "torch.compile the model (fuses the non-GEMM work; compiled once per worker, 25-45 s on 2 "
            "cores): auto (default) = eager, as no device was measured faster compiled yet "
            "(HPC_CLASSIFY_COMPILE=on|off changes auto); on (not with int8); off = the eager path",
            parse=compile_from_text,
            metavar="{auto,on,off}",
        ),
    )

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_tokens", "batch_size", "token_budget"):
            value = getattr(self, name)
            if value is not None and not is_whole_number(value, 1):
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
            if value is not None:  # a numpy integer (a computed batch size) as Python's, for JSON and torch
                object.__setattr__(self, name, int(value))
        max_mem_gb, device = self.max_mem_gb, self.device
        if max_mem_gb is not None and (isinstance(max_mem_gb, bool) or not max_mem_gb > 0):
            raise ConfigError(f"max_mem_gb must be a positive number of GiB, not {max_mem_gb!r}")
        if max_mem_gb is not None and device == "cpu":
            raise ConfigError(
                "max_mem_gb limits GPU memory and has no effect on CPU",
                hint="leave it out on CPU; token_budget bounds the memory of a batch there",
            )
        if device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {device!r}")
        if not isinstance(self.autocast, bool):
            raise ConfigError(f"autocast must be true or false, not {self.autocast!r}")
        check_precision(self.precision, self.autocast)
        check_compile(self.compile, self.precision)
        if self.precision == "fp16" and device == "cpu":
            raise ConfigError(
                "precision fp16 (NeMo Curator's GPU autocast) runs on GPUs only, not on device cpu",
                hint="use precision auto, bf16 or int8 on CPU",
            )
        if self.precision == "int8" and device == "cuda":
            raise ConfigError(
                "precision int8 (dynamically quantized Linear layers) runs on CPU only, not on device cuda",
                hint="use precision auto (bf16/fp16) on GPUs, or device cpu",
            )

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in OPTION_NAMES}


OPTION_FIELDS: tuple[dataclasses.Field, ...] = dataclasses.fields(EngineOptions)
OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in OPTION_FIELDS)


def option_names(scope: str) -> tuple[str, ...]:
    """The options of a CLI/YAML scope (SHARED or PER_MODEL), in declaration order."""
    return tuple(f.name for f in OPTION_FIELDS if f.metadata["scope"] == scope)


def option_flags() -> tuple[tuple[str, Flag], ...]:
    """(name, Flag) of every option given on the command line, in declaration order."""
    return tuple((f.name, f.metadata["flag"]) for f in OPTION_FIELDS if f.metadata["flag"] is not None)


def flag_text(name: str) -> str:
    """The command-line spelling of option `name`: --max-tokens, --no-autocast."""
    flag = next(f.metadata["flag"] for f in OPTION_FIELDS if f.name == name)
    dashed = name.replace("_", "-")
    return f"--no-{dashed}" if flag.turns_off else f"--{dashed}"
