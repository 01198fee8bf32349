"""Typed, validated settings. `ClassifierSettings` is what travels to workers (small, picklable);
`RunConfig` is one driver run. Both serialise to plain dicts for the output directory's fingerprint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
BAD_ROW_POLICIES = ("error", "skip")
OUTPUT_FORMATS = ("jsonl", "parquet")
PROTOCOLS = ("tcp", "ucxx")


@dataclass(frozen=True)
class ClassifierSettings:
    """Everything needed to rebuild a classifier in another process. `None` means the classifier's default."""

    classifier: str = "domain"
    model: str | None = None
    revision: str | None = None
    filter_by: tuple[str, ...] | None = None
    text_field: str = "text"
    pred_column: str | None = None
    prob_column: str | None = None
    max_chars: int | None = None
    max_tokens: int | None = None
    batch_size: int | None = None
    token_budget: int | None = None
    device: str = "auto"
    autocast: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.filter_by, str):
            object.__setattr__(self, "filter_by", (self.filter_by,))
        elif self.filter_by is not None:
            object.__setattr__(self, "filter_by", tuple(self.filter_by))
        if self.device not in DEVICES:
            raise ConfigError(f"device must be one of {', '.join(DEVICES)}, not {self.device!r}")
        for name in ("max_chars", "max_tokens", "batch_size", "token_budget"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ConfigError(f"{name} must be a positive integer, not {value!r}")
        if not self.text_field:
            raise ConfigError("text_field must be a non-empty column name")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["filter_by"] = list(self.filter_by) if self.filter_by is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierSettings:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown classifier setting(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class RunConfig:
    """One `hpc-classify run`: inputs, output, classifier, policies and the cluster to use."""

    inputs: tuple[str, ...]
    output: str
    classifier: ClassifierSettings = field(default_factory=ClassifierSettings)
    output_format: str = "jsonl"
    on_bad_row: str = "error"
    max_retries: int = 2
    overwrite: bool = False
    tasks_per_worker: int = 2
    progress_interval: float = 30.0
    cluster: str = "local"
    scheduler_file: str | None = None
    scheduler_address: str | None = None
    protocol: str = "tcp"
    workers: int | None = None
    max_workers: int | None = None  # jobqueue: adapt between workers and this
    threads_per_worker: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "inputs", tuple(self.inputs))
        if not self.inputs:
            raise ConfigError("no --input given", hint="pass --input DIR|FILE|GLOB (repeatable)")
        if not self.output:
            raise ConfigError("no --output given", hint="pass --output DIR")
        _check_choice("output_format", self.output_format, OUTPUT_FORMATS)
        _check_choice("on_bad_row", self.on_bad_row, BAD_ROW_POLICIES)
        _check_choice("protocol", self.protocol, PROTOCOLS)
        if self.max_retries < 0:
            raise ConfigError(f"max_retries must be >= 0, not {self.max_retries}")
        if self.max_workers is not None and self.max_workers < (self.workers or 1):
            raise ConfigError(
                f"max_workers ({self.max_workers}) must be at least workers ({self.workers or 1})",
                hint="--max-workers is the upper bound of the elastic jobqueue cluster",
            )
        if self.tasks_per_worker < 1:
            raise ConfigError(f"tasks_per_worker must be >= 1, not {self.tasks_per_worker}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def stable_hash(data: Any) -> str:
    """A short, stable hash of JSON-serialisable data (keys sorted)."""
    blob = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
