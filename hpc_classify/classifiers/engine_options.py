"""`EngineOptions`: how a classifier's model runs (device, precision, text cuts, batch sizes), declared and
validated here once.

Every classifier takes each option as a constructor keyword (NeMo Curator's classifiers take some of them
positionally, with their own defaults: see `inherited_keywords`) and keeps it as a plain attribute of the
same name. The CLI's and YAML's keys come from here too: a `SHARED` option given as a flag or top-level
YAML key applies to every classifier of a run, a `PER_MODEL` one needs exactly one classifier, and an
option without a scope is a constructor argument only (a YAML `classifiers:` entry). A new option is a
new field here (plus where it takes effect: the engine, or the runtime).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.config import DEVICES, check_compile, check_precision
from hpc_classify.errors import ConfigError

SHARED = "shared"
PER_MODEL = "per-model"


def _option(default: Any, scope: str | None) -> Any:
    return field(default=default, metadata={"scope": scope})


@dataclass(frozen=True)
class EngineOptions:
    """The engine settings of one classifier (field order = their order in generated signatures)."""

    max_chars: int | None = _option(2000, PER_MODEL)  # characters kept per document (None: all)
    max_tokens: int | None = _option(512, PER_MODEL)  # tokens kept per document (None: the tokenizer's)
    batch_size: int | None = _option(None, SHARED)  # NeMo's documents per batch (a token budget here)
    device: str = _option("auto", SHARED)
    autocast: bool = _option(True, SHARED)  # False: exact fp32
    token_budget: int | None = _option(None, SHARED)  # padded tokens per batch (None: per device)
    # GPU memory cap of the process (NeMo's); no flag or top-level key: set per classifier in YAML.
    max_mem_gb: int | float | None = _option(None, None)
    precision: str = _option("auto", SHARED)
    # A speed setting: in the engine cache key, not in the fingerprint (see hpc_classify.engine.compiled).
    compile: bool | str = _option("auto", SHARED)

    def __post_init__(self) -> None:
        for name in ("max_chars", "max_tokens", "batch_size", "token_budget"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
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
        check_compile(self.compile)
        if self.compile is True and self.precision == "int8":
            raise ConfigError(
                "compile=True with precision int8: the dynamically quantized Linear layers are not compiled",
                hint="use compile auto/false with int8, or precision bf16/fp32 with compile",
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
