"""LlamaGuard-7b with an NVIDIA Aegis LoRA adapter: finding, loading and running it (Aegis, instruction data guard).

As NeMo Curator 0.7.1 does: the base model `meta-llama/LlamaGuard-7b` (gated) loaded with
`AutoModelForCausalLM`, the adapter applied with `peft.PeftModel` (unmerged), the tokenizer of the base
model with left padding and `pad = unk`, documents truncated at 4,096 tokens. Aegis decodes greedily
(`max_new_tokens=100, pad_token_id=0`) and strips the prompt from the decoded text by character count;
instruction data guard takes the prefill's last-layer hidden state at the last position and runs the
small guard net of `nvidia/instruction-data-guard` on it.

Importing this module imports neither torch nor transformers (the driver and `fetch-models` read the
repository constants below). The loaders here load afresh; the classifiers keep what they load in the one
per-process model cache (`hpc_classify.classifiers.runtime`), so the Aegis classifier and the instruction
data guard with the same adapter share one copy of the 7B model.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_classify.errors import (
    CacheAccessError,
    CheckpointFormatError,
    ModelAccessError,
    ModelNotAvailableError,
)
from hpc_classify.models.checkpoint_meta import SHA256_BLOB, file_hash
from hpc_classify.models.hub import hub_cache_dir, read_json_file, resolve_model_dir
from hpc_classify.models.llama_guard_weights import cached_repo_id, require_base_weights

if TYPE_CHECKING:
    import numpy as np
    import torch

logger = logging.getLogger(__name__)

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
GUARD_LAYERS = ("input_layer", "hidden_layer_0", "hidden_layer_1", "hidden_layer_2")

MAX_LENGTH = 4096  # tokens per document (NeMo's AegisConfig.max_length), prompt included
AEGIS_MAX_NEW_TOKENS = 100
PAD_TOKEN_ID = 0  # generate(pad_token_id=0) as NeMo; LlamaGuard's <unk>
CPU_MAX_DOCUMENTS = 4  # documents per generate() call on a CPU: larger batches only add padding there
LARGE_MODEL_PARAMETERS = 1_000_000_000


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


# -- loading (the classifiers cache what they load: classifiers.runtime) ---------------------------
@dataclass
class LoadedLlamaGuard:
    model: Any  # peft.PeftModel over a LlamaForCausalLM, eval, on `device`
    tokenizer: Any  # the base model's tokenizer: left padding, pad = unk
    device: Any
    dtype: Any
    lock: threading.Lock = field(default_factory=threading.Lock)  # one generate() at a time

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_base_model().config.hidden_size)


def load_llama_guard_tokenizer(base_dir: str | Path) -> Any:
    from hpc_classify.models.checkpoint import load_checkpoint_tokenizer

    tokenizer = load_checkpoint_tokenizer(Path(base_dir), padding_side="left")
    tokenizer.pad_token = tokenizer.unk_token
    return tokenizer


def load_llama_guard(
    base_dir: str | Path, adapter_dir: str | Path, device: torch.device, dtype: torch.dtype
) -> LoadedLlamaGuard:
    """The base model with the LoRA adapter and the tokenizer, on `device` in `dtype`."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from hpc_classify.models.checkpoint import check_tokenizer_fits, refuse_key_mismatch

    base_dir, adapter_dir = Path(base_dir), Path(adapter_dir)
    require_base_weights(cached_repo_id(base_dir) or str(base_dir), base_dir)  # not a raw FileNotFoundError
    tokenizer = load_llama_guard_tokenizer(base_dir)  # first: a missing one is refused before 13 GB load
    placement = {"device_map": {"": str(device)}} if device.type == "cuda" else {}
    base, info = AutoModelForCausalLM.from_pretrained(
        str(base_dir), dtype=dtype, output_loading_info=True, **placement
    )
    # A weight missing from the files would be random, another in every worker; unexpected ones change nothing.
    refuse_key_mismatch(
        info["missing_keys"], (), base_dir, "those of config.json's architecture (model.*, lm_head.*)"
    )
    check_tokenizer_fits(tokenizer, base.get_input_embeddings().num_embeddings, base_dir)
    parameters = sum(p.numel() for p in base.parameters())
    if device.type == "cpu" and parameters >= LARGE_MODEL_PARAMETERS:
        logger.warning(
            "%s (%.1f B parameters) runs on the CPU: this is very slow, of the order of a minute per "
            "document on a 2-core node (see benchmarks/bench_llama_guard.py); a GPU is the intended device",
            base_dir.name,
            parameters / 1e9,
        )
    model = PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=False).to(device).eval()
    logger.info("loaded %s + adapter %s on %s (%s)", base_dir, adapter_dir, device, dtype)
    return LoadedLlamaGuard(model, tokenizer, device, dtype)


def _guard_net_class() -> type:
    import torch
    import torch.nn.functional as F  # noqa: N812

    class InstructionDataGuardNet(torch.nn.Module):
        """NeMo's net: normalize, relu(input_layer), relu(hidden_0), relu(hidden_1), sigmoid(hidden_2)
        (dropout is a no-op in eval). Layer sizes come from the weights."""

        def __init__(self, shapes: dict[str, tuple[int, int]], dropout: float):
            super().__init__()
            self.dropout = torch.nn.Dropout(dropout)
            for name in GUARD_LAYERS:
                out_features, in_features = shapes[name]
                setattr(self, name, torch.nn.Linear(in_features, out_features))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = F.normalize(x, dim=-1)
            for name in GUARD_LAYERS[:-1]:
                x = F.relu(getattr(self, name)(self.dropout(x)))
            return torch.sigmoid(self.hidden_layer_2(self.dropout(x))).flatten()

    return InstructionDataGuardNet


def load_guard_net(guard_dir: str | Path, device: torch.device) -> Any:
    """The instruction-data-guard net (fp32, eval) from config.json + model.safetensors, on `device`."""
    from hpc_classify.models.checkpoint import read_safetensors

    guard_dir = Path(guard_dir)
    config = read_json_file(guard_dir / "config.json", f"instruction data guard {guard_dir}")
    weights_path = guard_dir / "model.safetensors"
    if not weights_path.is_file():
        raise CheckpointFormatError(f"instruction data guard {guard_dir}: model.safetensors is missing")
    state = read_safetensors(weights_path)
    expected = {f"{name}.{kind}" for name in GUARD_LAYERS for kind in ("weight", "bias")}
    if set(state) != expected:
        raise CheckpointFormatError(
            f"instruction data guard {guard_dir}: weights {sorted(state)} are not the layers {sorted(expected)}"
        )
    shapes = {name: tuple(state[f"{name}.weight"].shape) for name in GUARD_LAYERS}
    widths = [shapes[GUARD_LAYERS[0]][1]] + [shapes[name][0] for name in GUARD_LAYERS]
    chained = all(shapes[name][1] == widths[i] for i, name in enumerate(GUARD_LAYERS))
    if not chained or widths[-1] != 1 or config.get("input_dim", widths[0]) != widths[0]:
        raise CheckpointFormatError(
            f"instruction data guard {guard_dir}: layer shapes {shapes} do not chain from input_dim "
            f"{config.get('input_dim')} to one output"
        )
    net = _guard_net_class()(shapes, float(config.get("dropout", 0.7)))
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    return net.to(device).eval()


# -- running ----------------------------------------------------------------------------------
def _batches(
    ids: list[list[int]], max_documents: int, token_budget: int, extra_tokens: int = 0
) -> list[list[int]]:
    """The engine's length-sorted token-budget batches, capped at `max_documents`, as index lists."""
    from hpc_classify.engine.batching import plan_batches

    lengths = [len(row) for row in ids]
    planned = plan_batches(lengths, token_budget, max_documents=max_documents, extra_tokens=extra_tokens)
    return [batch.tolist() for batch in planned]


def _left_padded(ids: list[list[int]], pad_id: int, device: Any) -> tuple[Any, Any]:
    import torch

    width = max(len(row) for row in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, tokens in enumerate(ids):
        input_ids[row, width - len(tokens) :] = torch.tensor(tokens, dtype=torch.long)
        mask[row, width - len(tokens) :] = 1
    return input_ids.to(device), mask.to(device)


def _run_batches(batches: list[list[int]], run_one: Any, device: Any, results: dict[int, Any]) -> None:
    """run_one(indices) -> values, one per index; a batch that runs out of GPU memory is split in two."""
    from hpc_classify.engine.device import is_out_of_memory, release_cached_memory

    pending = list(batches)
    while pending:
        batch = pending.pop(0)
        try:
            values = run_one(batch)
        except Exception as error:
            if not is_out_of_memory(error) or len(batch) == 1:
                raise
            release_cached_memory(device)
            half = len(batch) // 2
            logger.warning("out of memory on %d documents: retrying in halves", len(batch))
            pending[:0] = [batch[:half], batch[half:]]
            continue
        results.update(zip(batch, values, strict=True))


def generate_responses(
    loaded: LoadedLlamaGuard, prompts: Sequence[str], *, max_documents: int, token_budget: int
) -> list[str]:
    """NeMo's Aegis generation: each prompt's greedy continuation (<= 100 new tokens), decoded with the
    prompt (special tokens skipped) and cut after the prompt's character count."""
    import torch

    tokenizer = loaded.tokenizer
    ids = tokenizer(list(prompts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    batches = _batches(ids, max_documents, token_budget, extra_tokens=AEGIS_MAX_NEW_TOKENS)

    def run_one(batch: list[int]) -> list[str]:
        input_ids, mask = _left_padded([ids[i] for i in batch], tokenizer.pad_token_id, loaded.device)
        with loaded.lock, torch.inference_mode():
            out = loaded.model.generate(
                input_ids=input_ids,
                attention_mask=mask,
                max_new_tokens=AEGIS_MAX_NEW_TOKENS,
                pad_token_id=PAD_TOKEN_ID,
                do_sample=False,
            )
        texts = tokenizer.batch_decode(out.cpu().tolist(), skip_special_tokens=True)
        return [text[len(prompts[i]) :] for text, i in zip(texts, batch, strict=True)]

    results: dict[int, str] = {}
    _run_batches(batches, run_one, loaded.device, results)
    return [results[i] for i in range(len(prompts))]


def last_hidden_states(
    loaded: LoadedLlamaGuard, texts: Sequence[str], *, max_documents: int, token_budget: int
) -> np.ndarray:
    """The prefill's last-layer hidden state (after the final norm) at each document's last token,
    float32 [N, hidden]: NeMo's `generate(...).hidden_states[0][32][:, -1, :]` without the LM head."""
    import numpy as np
    import torch

    tokenizer = loaded.tokenizer
    ids = tokenizer(list(texts), truncation=True, max_length=MAX_LENGTH)["input_ids"]
    batches = _batches(ids, max_documents, token_budget)
    decoder = loaded.model.get_base_model().get_decoder()  # LlamaModel, LoRA layers injected

    def run_one(batch: list[int]) -> list[np.ndarray]:
        input_ids, mask = _left_padded([ids[i] for i in batch], tokenizer.pad_token_id, loaded.device)
        positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)  # as generate() derives them
        with loaded.lock, torch.inference_mode():
            hidden = decoder(
                input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=False
            ).last_hidden_state[:, -1, :]
        return list(hidden.float().cpu().numpy())

    results: dict[int, np.ndarray] = {}
    _run_batches(batches, run_one, loaded.device, results)
    if not texts:
        return np.zeros((0, loaded.hidden_size), dtype=np.float32)
    return np.stack([results[i] for i in range(len(texts))]).astype(np.float32)


def guard_scores(net: Any, embeddings: np.ndarray, device: torch.device) -> np.ndarray:
    """The guard net's poisoning scores (float32 [N]) of last-layer embeddings."""
    import torch

    with torch.inference_mode():
        scores = net(torch.from_numpy(embeddings).to(device=device, dtype=torch.float32))
    return scores.float().cpu().numpy().reshape(-1)
