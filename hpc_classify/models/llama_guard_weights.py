"""Whether a LlamaGuard base model's weights are all there: `model.safetensors`, or
`model.safetensors.index.json` and every shard its `weight_map` names (meta-llama/LlamaGuard-7b has three).

An interrupted fetch, or a cache copied in part, can hold the index and only some shards: the hub client
finds such a snapshot complete offline when it has no tree listing of the commit (`trees/<commit>.json`),
transformers then fails deep in loading on the first missing shard, with neither the model's name nor a
remedy, and the run fingerprint would hash whatever shards are there. fetch-models' check of the cache, the
resolution of the base model and its loading all ask here first. No torch, no transformers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from hpc_classify.errors import ModelNotAvailableError

WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"
FETCH_COMMAND = "hpc-classify fetch-models --classifier aegis"


def missing_base_weights(base_dir: str | os.PathLike[str]) -> list[str]:
    """What `base_dir` lacks of the base model's weights, in words ([] when complete). Raises PermissionError
    for a file this user may not see (the caller says so)."""
    base_dir = Path(base_dir)
    if (base_dir / WEIGHTS).is_file():
        return []
    index = base_dir / WEIGHTS_INDEX
    if not index.is_file():
        return [f"{WEIGHTS} (or {WEIGHTS_INDEX} and the shards it lists)"]
    try:
        shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except PermissionError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        return [f"readable {WEIGHTS_INDEX} ({type(error).__name__}: {error})"]
    if not shards or not all(isinstance(shard, str) for shard in shards):
        return [f"{WEIGHTS_INDEX} with a weight_map naming its shards"]
    return [
        f"{shard} (a shard {WEIGHTS_INDEX} lists)" for shard in shards if not (base_dir / shard).is_file()
    ]


def cached_repo_id(directory: Path) -> str | None:
    """The hub id whose cached snapshot `directory` is (`.../models--org--name/snapshots/<commit>`), else None."""
    repo = directory.parent.parent.name
    if directory.parent.name != "snapshots" or not repo.startswith("models--"):
        return None
    return repo.removeprefix("models--").replace("--", "/", 1)


def require_base_weights(base_model: str, base_dir: str | os.PathLike[str]) -> None:
    """Raise ModelNotAvailableError naming `base_model` when `base_dir` lacks weight files (a hub snapshot:
    fetch again; a local directory: complete it). An unreadable file is a CacheAccessError."""
    from hpc_classify.errors import CacheAccessError
    from hpc_classify.models.cache_access import blocked_path, not_readable
    from hpc_classify.models.hub import hub_cache_dir

    base_dir = Path(base_dir)
    cached = cached_repo_id(base_dir)
    try:
        missing = missing_base_weights(base_dir)
    except PermissionError as error:
        problem = not_readable(blocked_path(error.filename or base_dir), base_dir.parent.parent)
        raise CacheAccessError(
            f"base model {base_model!r} (LlamaGuard): {problem.reason}", hint=problem.hint
        ) from None
    if not missing:
        return
    if cached is not None:
        hint = (
            "the cached snapshot is incomplete (an interrupted fetch, or a cache copied in part): on a login "
            f"node with internet run `HF_HUB_OFFLINE=0 {FETCH_COMMAND}` (or aegis-permissive, "
            "instruction-data-guard: the classifier you run), which fetches the missing files, with the same "
            f"HF_HOME as the compute nodes (now HF_HOME={os.environ.get('HF_HOME', '<unset>')}, cache "
            f"{hub_cache_dir()})"
        )
    else:
        hint = (
            f"copy the complete model into {base_dir} (config.json, the tokenizer files, and {WEIGHTS} or "
            f"{WEIGHTS_INDEX} with every shard it lists), or use the hub's, pre-fetched with `{FETCH_COMMAND}`"
        )
    raise ModelNotAvailableError(
        f"base model {base_model!r} (LlamaGuard) is incomplete: {base_dir} has no {'; no '.join(missing)}",
        hint=hint,
    )
