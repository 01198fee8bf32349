"""The per-process runtime of classifiers: one cache of loaded models (inference engines, LlamaGuard with its
adapter, guard nets: every kind), the device setup of this process, and building a classifier's engine.

A classifier object holds settings only and pickles cheaply into every task; what it loads lives here, once
per process, and is reused by every partition and file that process classifies.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

from hpc_classify.classifiers.worker_resources import limit_gpu_memory, torch_threads_for_this_process
from hpc_classify.errors import ConfigError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

Loaded = TypeVar("Loaded")

# Key -> the loaded model; its first element names the kind (a classifier's class path for an engine,
# "llama-guard", "guard-net"). Loading holds the lock: two threads of a worker never load one model twice.
_MODELS: dict[tuple, Any] = {}
_MODELS_LOCK = threading.Lock()


def cached_model(key: tuple[Hashable, ...], load: Callable[[], Loaded]) -> Loaded:
    """The model cached under `key` in this process, loaded by `load()` on first use."""
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = load()
        return _MODELS[key]


def loaded_model(key: tuple[Hashable, ...]) -> Any | None:
    """What `cached_model` holds under `key`, or None: never loads."""
    with _MODELS_LOCK:
        return _MODELS.get(key)


def prepare_device(device_name: str, max_mem_gb: float | None) -> torch.device:
    """This process's device for a model: torch threads set on CPU (where max_mem_gb is an error), the GPU
    memory limit applied on CUDA."""
    from hpc_classify.engine import configure_threads, resolve_device

    device = resolve_device(device_name)
    if device.type == "cpu":
        if max_mem_gb is not None:
            raise ConfigError(
                f"max_mem_gb={max_mem_gb} was given but this worker has no GPU (it limits GPU memory)",
                hint="leave max_mem_gb out on CPU nodes",
            )
        configure_threads(torch_threads_for_this_process())
    else:
        limit_gpu_memory(device, max_mem_gb)
    return device


def token_budget_for(classifier: Any, device: torch.device) -> int | None:
    """The token budget of `classifier` (a DistributedDataClassifier: base.py imports this module, so it is
    not named here) on `device`. On CPU a budget derived from a GPU-sized batch_size (NeMo's 256 documents) is capped at the CPU
    default: batch size changes speed and memory, never predictions."""
    from hpc_classify.engine.device import default_token_budget

    budget = classifier.effective_token_budget()
    if device.type == "cpu" and classifier.token_budget is None and budget is not None:
        return min(budget, default_token_budget(device))
    return budget


def load_engine(classifier: Any) -> tuple[Any, list[str]]:
    """(InferenceEngine, labels) of `classifier`, built from its components and engine options."""
    from hpc_classify.classifiers.adapters import as_logits_module
    from hpc_classify.engine import InferenceEngine

    device = classifier.prepare_device()
    components = classifier.load_components(device)
    labels = list(components.labels)  # checked against filter_by by the caller, cached or not
    engine = InferenceEngine(
        as_logits_module(components.model),
        components.tokenizer,
        device=device,
        autocast=classifier.autocast,
        precision=classifier.precision,
        compile=classifier.compile,
        max_chars=classifier.max_chars,
        max_tokens=classifier.max_tokens,
        token_budget=token_budget_for(classifier, device),
    )
    classifier.check_outputs(engine.num_labels, labels)  # before caching: a mismatch never runs
    logger.info("loaded %s on %s (%d labels)", type(classifier).__name__, device, len(labels))
    return engine, labels
