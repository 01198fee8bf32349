"""`InferenceEngine`: texts -> the model's outputs (logits or scores), as fast as the device allows.

One call of `predict_outputs` (or `predict_sharing_tokens`, for several models on one tokenization) walks the input in chunks: a background thread tokenizes chunk k+1 (the Rust
tokenizer releases the GIL) while the forward passes of chunk k run. Inside a chunk, documents are sorted
by length and grouped under a padded-token budget; each batch is padded to its own longest document.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import nn

from hpc_classify.engine import batch_progress
from hpc_classify.engine.attention import accelerate_attention
from hpc_classify.engine.attention_choice import attention_label, resolve_attention
from hpc_classify.engine.backbone_head import BackboneAndHead, head_linears
from hpc_classify.engine.batching import pad_batch, plan_batches
from hpc_classify.engine.compiled import CompiledModule, resolve_compile
from hpc_classify.engine.device import (
    MIN_TOKEN_BUDGET,
    configure_allocator,
    default_token_budget,
    is_out_of_memory,
    release_cached_memory,
    resolve_device,
)
from hpc_classify.engine.packed_linear import pack_linear_layers
from hpc_classify.engine.precision import precision_dtype, quantize_linear_layers, resolve_precision
from hpc_classify.engine.tokenization import ChunkTokenizer

logger = logging.getLogger(__name__)

DEFAULT_CHUNK_SIZE = 2048  # documents tokenized (and length-sorted) together


def _position_limit(model: nn.Module) -> int | None:
    """The model configuration's max_position_embeddings (the backbone's, wherever an adapter holds it)."""
    for module in model.modules():
        value = getattr(getattr(module, "config", None), "max_position_embeddings", None)
        if isinstance(value, int) and value > 0:
            return value
    return None


class InferenceEngine:
    """Classifies texts with `model` (input_ids, attention_mask -> logits) and `tokenizer`.

    The engine takes ownership of `model`: it is put in eval mode, moved to `device`, converted once
    to the compute dtype where it matters (the Linear layers: bf16 on CPUs with native bf16 and on recent
    GPUs, fp16 on older GPUs; everything fp32 with `autocast=False` or `precision="fp32"`, which is exact;
    int8-quantized Linear layers with `precision="int8"`, CPU only: see `hpc_classify.engine.precision`)
    and, for DeBERTa-v2, given the fast exact attention. Eager bf16 engines on CPU also pack their bf16 Linear
    weights once for oneDNN, GELU fused (`hpc_classify.engine.packed_linear`). On CPU it also tunes the process's allocator (`configure_allocator`). Calls are serialised: one model, one forward at a time.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        *,
        device: str | torch.device = "auto",
        autocast: bool = True,
        precision: str = "auto",
        max_chars: int | None = 2000,
        max_tokens: int | None = 512,
        token_budget: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        fast_attention: bool = True,
        compile: bool | str = "auto",
        attention: str = "auto",
    ):
        if token_budget is not None and token_budget < 1:
            raise ValueError(f"token_budget must be >= 1, not {token_budget}")
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision, autocast)
        self.dtype = precision_dtype(self.precision)
        self.tokenize = ChunkTokenizer(
            tokenizer, max_chars=max_chars, max_tokens=max_tokens, position_limit=_position_limit(model)
        )
        self.token_budget = token_budget or default_token_budget(self.device)
        self.chunk_size = max(1, chunk_size)
        if self.device.type == "cpu":
            configure_allocator()  # activations come from malloc on CPU: keep them out of mmap/page faults
        self.model = _prepare_model(model, self.device, self.precision)
        kernel, compile = resolve_attention(attention, self.device, compile, self.precision)
        self.fast_attention_layers = accelerate_attention(self.model, kernel) if fast_attention else 0
        self._attention_kernel = kernel
        self.num_labels = _num_labels(self.model)
        # The backbone (a BackboneAndHead's head stays eager fp32) or the whole generic model.
        backbone = self.model.backbone if isinstance(self.model, BackboneAndHead) else self.model
        compiling = resolve_compile(compile, self.device, self.precision)
        self._compiled = CompiledModule(backbone, self.device) if compiling else None
        if not compiling and self.device.type == "cpu" and self.dtype == torch.bfloat16:
            pack_linear_layers(backbone)  # eager bf16 on CPU: weights packed once, GELU fused
        self._lock = threading.Lock()
        logger.info(
            "inference engine on %s, %s%s, %s attention, token budget %d, max_tokens %d, max_chars %s",
            self.device,
            self.precision,
            ", compiled" if self.compiled else "",
            self.attention_label,
            self.token_budget,
            self.tokenize.max_tokens,
            max_chars,
        )

    # -- public -------------------------------------------------------------------------------
    @property
    def compiled(self) -> bool:
        """Whether forward passes go through torch.compile (False after a fallback to eager)."""
        return self._compiled is not None and self._compiled.active

    @property
    def attention(self) -> str:
        """The DeBERTa attention that runs: "flex" (compiled FlexAttention, no materialised bias), "tiled"
        (eager CPU, the position terms added per tile in C++), "bias" (the per-chunk bias and SDPA; also
        what a compiled graph runs for tiled, and flex after a compile fallback), or "model" (the model's
        own: not a DeBERTa-v2 model, or fast_attention=False). See engine/attention_choice.py."""
        if not self.fast_attention_layers:
            return "model"
        if self._attention_kernel == "flex" and self.compiled:
            return "flex"
        return "tiled" if self._attention_kernel == "tiled" and not self.compiled else "bias"

    @property
    def attention_label(self) -> str:
        """`attention` as logs and summaries name it (attention_choice.attention_label)."""
        return attention_label(self.attention, self.dtype)

    def describe(self) -> str:
        """One line for logs and run summaries: precision, compiled or eager, attention kernel."""
        return (
            f"{self.precision}, {'compiled' if self.compiled else 'eager'}, {self.attention_label} attention"
        )

    @property
    def compile_seconds(self) -> float:
        """Wall time of the batches during which a graph was compiled (0.0 when not compiling)."""
        return self._compiled.compile_seconds if self._compiled is not None else 0.0

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), num_labels] softmax probabilities, rows in input order."""
        return softmax(self.predict_outputs(texts))

    def predict_outputs(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [len(texts), num_outputs]: the model's raw outputs (logits, or regression scores)."""
        return predict_sharing_tokens([self], texts)[0]

    def predict_tokenized(self, token_ids: list[list[int]]) -> np.ndarray:
        """Raw outputs of already tokenized documents (this engine's `tokenize`), rows in input order."""
        with self._lock:
            return self._predict_tokenized(token_ids)

    # -- internals ----------------------------------------------------------------------------
    def _predict_tokenized(self, token_ids: list[list[int]]) -> np.ndarray:
        lengths = [len(ids) for ids in token_ids]
        batches = plan_batches(lengths, self.token_budget)
        outputs: list[torch.Tensor] = []
        for indices in batches:
            input_ids, attention_mask = pad_batch([token_ids[i] for i in indices], self.tokenize.pad_id)
            outputs.append(self._run_batch(self._to_device(input_ids), self._to_device(attention_mask)))
        if not outputs:
            return np.empty((0, self.num_labels), dtype=np.float32)
        # One device->host copy per chunk: per-batch copies would synchronise the GPU every batch.
        raw = torch.cat(outputs).cpu().numpy()
        result = np.empty_like(raw)
        result[np.concatenate(batches)] = raw
        return result

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor

    def _run_batch(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Raw outputs of one batch; on out-of-memory, split it in two (or, for a single document,
        keep only its first half of tokens) and retry. Lowers the budget so later batches fit."""
        try:
            return self._outputs(input_ids, attention_mask)
        except (RuntimeError, torch.OutOfMemoryError) as error:
            if not is_out_of_memory(error):
                raise
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
        release_cached_memory(self.device)  # outside the except block: the traceback no longer pins memory
        rows, width = input_ids.shape
        if rows > 1:
            self._lower_budget(rows * width, message)
            half = rows // 2
            return torch.cat(
                [
                    self._run_batch(*_trim_padding(input_ids[:half], attention_mask[:half])),
                    self._run_batch(*_trim_padding(input_ids[half:], attention_mask[half:])),
                ]
            )
        if width <= 2:
            raise RuntimeError(f"out of memory even for one document of {width} tokens: {message}")
        logger.warning(
            "one document of %d tokens ran out of memory (%s): classifying its first %d tokens only",
            width,
            message,
            width // 2,
        )
        return self._run_batch(input_ids[:, : width // 2], attention_mask[:, : width // 2])

    def _lower_budget(self, failed_tokens: int, message: str) -> None:
        lowered = max(MIN_TOKEN_BUDGET, min(self.token_budget, failed_tokens // 2))
        if lowered < self.token_budget:
            logger.warning(
                "a batch of %d padded tokens ran out of memory (%s): token budget %d -> %d",
                failed_tokens,
                message,
                self.token_budget,
                lowered,
            )
            self.token_budget = lowered

    def _outputs(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._autocast():
            if isinstance(self.model, BackboneAndHead):
                backbone = self._compiled or self.model.backbone
                hidden = backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                # The head in fp32: near-tied logits should not be decided by bf16 rounding.
                with torch.autocast(self.device.type, enabled=False):
                    logits = self.model.head_logits(hidden.float(), attention_mask)
            else:
                model = self._compiled or self.model
                logits = _logits_of(model(input_ids=input_ids, attention_mask=attention_mask))
            return logits.float()

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32 (max-shifted, so large logits do not overflow)."""
    if not len(logits):
        return logits.astype(np.float32)
    exponentials = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (exponentials / exponentials.sum(axis=1, keepdims=True)).astype(np.float32)


def predict_sharing_tokens(engines: Sequence[InferenceEngine], texts: Sequence[str]) -> list[np.ndarray]:
    """Raw outputs of every engine for `texts`, tokenized once with the first engine's tokenizer.

    The engines must tokenize alike (same tokenizer, max_chars and max_tokens): the caller groups them.
    Chunks overlap: a background thread tokenizes chunk k+1 (the Rust tokenizer releases the GIL) while
    every engine runs its forward passes over chunk k."""
    texts = list(texts)
    results = [np.empty((len(texts), engine.num_labels), dtype=np.float32) for engine in engines]
    if not texts:
        return results
    tokenize, chunk_size = engines[0].tokenize, engines[0].chunk_size
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="hpc-tokenize") as pool:
        pending = pool.submit(tokenize, texts[:chunk_size])
        for start in range(0, len(texts), chunk_size):
            token_ids = pending.result()
            following = start + chunk_size
            if following < len(texts):  # overlap: tokenize the next chunk during this one's forwards
                pending = pool.submit(tokenize, texts[following : following + chunk_size])
            for engine, result in zip(engines, results, strict=True):
                result[start : start + len(token_ids)] = engine.predict_tokenized(token_ids)
            batch_progress.report(len(token_ids), len(texts))
    return results


def _prepare_model(model: nn.Module, device: torch.device, precision: str) -> nn.Module:
    """Eval mode on `device`; the Linear layers' weights converted once to the precision's dtype (autocast
    then finds them ready, no per-op weight casts) or, for int8, quantized once. Embeddings, LayerNorms and
    hence the residual stream stay fp32, and so does the head (a BackboneAndHead's Linear layers outside
    its backbone, or a generic model's last Linear for int8): the matmuls run at bf16/int8 speed, the
    normalisations stay exact."""
    model.eval()
    model.to(device=device)
    if precision == "int8":
        quantize_linear_layers(model, keep=_head_of(model))
        return model
    dtype = precision_dtype(precision)
    if dtype != torch.float32:
        head = head_linears(model)  # none for generic models: autocast decides there
        for module in model.modules():
            if isinstance(module, nn.Linear) and module not in head:
                module.to(dtype=dtype)
    return model


def _head_of(model: nn.Module) -> list[nn.Linear]:
    """The Linear layers kept in fp32 under int8: a BackboneAndHead's head (every one: a multi-head model
    has eight), else the model's last Linear (a Hugging Face `*ForSequenceClassification`'s classifier)."""
    head = head_linears(model)
    if head:
        return head
    return [m for m in _last_modules(model) if isinstance(m, nn.Linear)][:1]


def _num_labels(model: nn.Module) -> int:
    for candidate in (
        getattr(model, "num_labels", None),
        getattr(getattr(model, "config", None), "num_labels", None),
    ):
        if isinstance(candidate, int) and candidate > 0:
            return candidate
    for module in _last_modules(model):
        if isinstance(module, nn.Linear):
            return module.out_features
    raise ValueError(f"cannot tell the number of labels of {type(model).__name__}: give it a `num_labels`")


def _last_modules(model: nn.Module) -> Iterator[nn.Module]:
    return reversed(list(model.modules()))


def _logits_of(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if logits is None:
        raise TypeError(f"the model returned {type(output).__name__}, not logits")
    return logits


def _trim_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    width = int(attention_mask.sum(dim=1).max())
    return input_ids[:, :width], attention_mask[:, :width]
