"""LlamaGuard-7b with an NVIDIA Aegis LoRA adapter (Aegis, instruction data guard): the repositories, the files
loading reads, finding the three parts (base model, adapter, guard net) and their hashes for the run fingerprint.

As NeMo Curator 0.7.1: the base model `meta-llama/LlamaGuard-7b` (gated), documents truncated at 4,096 tokens.
Loading is `llama_guard_loading`'s, running `llama_guard_inference`'s. Importing this module imports neither
torch nor transformers (the driver and `fetch-models` read the repository constants below).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hpc_classify.errors import CacheAccessError, ModelAccessError, ModelNotAvailableError
from hpc_classify.models.checkpoint_meta import SHA256_BLOB, file_hash
from hpc_classify.models.hub import hub_cache_dir, resolve_model_dir
from hpc_classify.models.llama_guard_weights import require_base_weights

LLAMA_GUARD_BASE = "meta-llama/LlamaGuard-7b"
AEGIS_DEFENSIVE = "nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0"
AEGIS_PERMISSIVE = "nvidia/Aegis-AI-Content-Safety-LlamaGuard-Permissive-1.0"
INSTRUCTION_DATA_GUARD = "nvidia/instruction-data-guard"

# Exactly the files loading reads (fetch-models pre-fetches these; never the pytorch_model*.bin copies).
BASE_PATTERNS: tuple[str, ...] = (
    "config.json",
    "generation_config.json",
    "*.safetensors",
    "model.safetensors.index.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "tokenizer.model",
)
ADAPTER_PATTERNS: tuple[str, ...] = ("adapter_config.json", "adapter_model.safetensors")
GUARD_PATTERNS: tuple[str, ...] = ("config.json", "model.safetensors")
ADAPTER_WEIGHTS = "adapter_model.safetensors"

MAX_LENGTH = 4096  # tokens per document (NeMo's AegisConfig.max_length), prompt included
CPU_MAX_DOCUMENTS = 4  # documents per generate() call on a CPU: larger batches only add padding there


# -- finding the three parts ------------------------------------------------------------------
def _message(error: ModelNotAvailableError) -> str:
    return str(error).split("\nHINT:", 1)[0]


def access_hint(base_model: str) -> str:
    return (
        f"{base_model} is a gated model: accept its license on https://huggingface.co/{base_model} with "
        "your Hugging Face account, then log in with `hf auth login` (or set HF_TOKEN, or pass "
        "token=... to the classifier). Compute nodes are usually offline: pre-fetch it on a login node with "
        "internet (`hpc-classify fetch-models --classifier aegis` (or aegis-permissive, instruction-data-guard)) "
        f"into the cache the compute nodes read (now {hub_cache_dir()}: HF_HUB_CACHE, else $HF_HOME/hub), "
        "or pass base_model=<local directory holding the model>"
    )


def resolve_base_dir(base_model: str, revision: str | None = None, token: str | bool | None = None) -> Path:
    """The LlamaGuard base model's directory (local, cache or hub), with all its weights. A gated model
    without access, or one missing offline, is one ModelAccessError (a PermissionError, as NeMo raises there)
    saying how to get access and how to pre-fetch; one whose weight shards are not all there, a
    ModelNotAvailableError saying how to complete it."""
    try:
        base_dir = resolve_model_dir(base_model, revision, allow_patterns=BASE_PATTERNS, token=token)
    except CacheAccessError:
        raise  # the cache is there but not readable (or the disk full): access to the hub is not the cure
    except ModelNotAvailableError as error:
        if Path(base_model).expanduser().exists() or "does not exist" in _message(error):
            raise  # a local directory that is not there: nothing about the hub to explain
        raise ModelAccessError(
            f"base model {base_model!r} (LlamaGuard) is not available: {_message(error)}",
            hint=access_hint(base_model),
        ) from None
    require_base_weights(base_model, base_dir)
    return base_dir


def resolve_adapter_dir(adapter: str, revision: str | None = None, token: str | bool | None = None) -> Path:
    """An Aegis LoRA adapter's directory (adapter_config.json, adapter_model.safetensors)."""
    return resolve_model_dir(
        adapter, revision, allow_patterns=ADAPTER_PATTERNS, token=token, config_file="adapter_config.json"
    )


def resolve_guard_dir(guard: str, revision: str | None = None, token: str | bool | None = None) -> Path:
    """The instruction-data-guard net's directory (config.json, model.safetensors)."""
    return resolve_model_dir(guard, revision, allow_patterns=GUARD_PATTERNS, token=token)


# -- hashes for the run fingerprint (no torch) -------------------------------------------------------
def adapter_hash(adapter_dir: str | Path) -> str:
    return file_hash(Path(adapter_dir) / ADAPTER_WEIGHTS, f"LoRA adapter {adapter_dir}: {ADAPTER_WEIGHTS}")


def base_model_hash(base_dir: str | Path) -> str:
    """A cheap identity of the base model: its config.json and, per weight file, the blob sha256 of the
    Hugging Face cache (or the file's size for a plain directory: 13 GB are not read for a fingerprint)."""
    base_dir = Path(base_dir)
    sha = hashlib.sha256((base_dir / "config.json").read_bytes())
    for weights in sorted(base_dir.glob("*.safetensors")):
        real = weights.resolve()
        tag = real.name if SHA256_BLOB.fullmatch(real.name) else str(real.stat().st_size)
        sha.update(f"{weights.name}={tag};".encode())
    return sha.hexdigest()[:16]
