"""Loading LlamaGuard-7b with an Aegis LoRA adapter, and the instruction-data-guard net, as NeMo Curator 0.7.1
does: the base model with `AutoModelForCausalLM`, the adapter with `peft.PeftModel` (unmerged), the base model's
tokenizer with left padding and `pad = unk`.

The loaders here load afresh; the classifiers keep what they load in the one per-process model cache
(`hpc_classify.classifiers.runtime`), so the Aegis classifier and the instruction data guard with the same adapter
share one copy of the 7B model. torch, transformers and peft are imported when a loader is called.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hpc_classify.errors import CheckpointFormatError
from hpc_classify.models.held_warnings import TRANSFORMERS_LOAD_LOGGER, held_warnings
from hpc_classify.models.hub import read_json_file
from hpc_classify.models.llama_guard import ADAPTER_WEIGHTS
from hpc_classify.models.llama_guard_weights import cached_repo_id, require_base_weights

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

GUARD_LAYERS = ("input_layer", "hidden_layer_0", "hidden_layer_1", "hidden_layer_2")
LARGE_MODEL_PARAMETERS = 1_000_000_000  # on a CPU, a model this large is warned about
ADAPTER_NAME = "default"  # peft's, as PeftModel.from_pretrained names the one adapter
# transformers logs its own report of missing keys here ("newly initialized"): held during the load


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
    from transformers import AutoModelForCausalLM

    from hpc_classify.models.checkpoint import check_tokenizer_fits, refuse_key_mismatch

    base_dir, adapter_dir = Path(base_dir), Path(adapter_dir)
    require_base_weights(cached_repo_id(base_dir) or str(base_dir), base_dir)  # not a raw FileNotFoundError
    tokenizer = load_llama_guard_tokenizer(base_dir)  # first: a missing one is refused before 13 GB load
    placement = {"device_map": {"": str(device)}} if device.type == "cuda" else {}
    with held_warnings(TRANSFORMERS_LOAD_LOGGER) as release:
        base, info = AutoModelForCausalLM.from_pretrained(
            str(base_dir), dtype=dtype, output_loading_info=True, **placement
        )
        # A weight missing from the files would be random, another in every worker; unexpected ones change
        # nothing. Refused, the error names the keys: transformers' "newly initialized" report is dropped.
        refuse_key_mismatch(
            info["missing_keys"], (), base_dir, "those of config.json's architecture (model.*, lm_head.*)"
        )
        release()
    check_tokenizer_fits(tokenizer, base.get_input_embeddings().num_embeddings, base_dir)
    parameters = sum(p.numel() for p in base.parameters())
    if device.type == "cpu" and parameters >= LARGE_MODEL_PARAMETERS:
        logger.warning(
            "%s (%.1f B parameters) runs on the CPU: this is very slow, of the order of a minute per "
            "document on a 2-core node (see benchmarks/bench_llama_guard.py); a GPU is the intended device",
            base_dir.name,
            parameters / 1e9,
        )
    model = load_adapter_strictly(base, adapter_dir).to(device).eval()
    logger.info("loaded %s + adapter %s on %s (%s)", base_dir, adapter_dir, device, dtype)
    return LoadedLlamaGuard(model, tokenizer, device, dtype)


def load_adapter_strictly(base: Any, adapter_dir: Path) -> Any:
    """`base` with `adapter_dir`'s adapter, built as `peft.PeftModel.from_pretrained` builds it (unmerged, not
    trainable) but strict: peft leaves an adapter weight missing from the file at its init (LoRA B = 0: the
    adapter silently a no-op, every document scored by the bare base model) and drops a key the model lacks
    (another target module, another base model). Either, or a shape or target module that does not fit the
    base model, is a CheckpointFormatError naming the file and the keys (as saved in it)."""
    from peft import PeftConfig, PeftModel
    from peft.auto import MODEL_TYPE_TO_PEFT_MODEL_MAPPING

    from hpc_classify.models.checkpoint import refuse_key_mismatch

    weights = adapter_dir / ADAPTER_WEIGHTS
    if not weights.is_file():  # else peft takes the directory for a hub id: an error about the hub
        raise CheckpointFormatError(f"{weights} is missing", hint=ADAPTER_HINT)
    config = PeftConfig.from_pretrained(str(adapter_dir))
    config.inference_mode = True
    peft_class = MODEL_TYPE_TO_PEFT_MODEL_MAPPING.get(config.task_type, PeftModel)
    try:
        model = peft_class(base, config, ADAPTER_NAME)
        # from_pretrained discards this result (it only warns of missing keys): hence the two steps
        result = model.load_adapter(str(adapter_dir), ADAPTER_NAME, is_trainable=False)
    except (ValueError, RuntimeError) as error:  # target modules not in the model, shapes of another model
        lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
        raise CheckpointFormatError(
            f"{weights}: the LoRA adapter does not fit the base model ({type(error).__name__}: "
            f"{' '.join(lines[:3])})",
            hint=ADAPTER_HINT,
        ) from None

    def as_saved(key: str) -> str:  # peft inserts the adapter's name into the model's keys, not the file's
        return ".".join(part for part in key.split(".") if part != ADAPTER_NAME)

    # Older peft lists every base-model key as missing too: only the adapter's own (its name in them) count.
    missing = [as_saved(k) for k in result.missing_keys if ADAPTER_NAME in k.split(".")]
    targets = config.target_modules  # a list, or one regular expression
    targets = sorted(targets) if isinstance(targets, list | set | tuple) else repr(targets)
    refuse_key_mismatch(
        missing,
        result.unexpected_keys,
        weights,
        f"those of adapter_config.json's target modules ({targets}) in the base model",
        ADAPTER_HINT,
    )
    return model


ADAPTER_HINT = (
    "the adapter file must hold every weight of the adapter its adapter_config.json describes, for this base "
    "model (an Aegis adapter: meta-llama/LlamaGuard-7b); re-run `hpc-classify fetch-models` if it came from the "
    "hub, else copy it again"
)


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
