"""NeMo Curator's LlamaGuard-based classifiers: `AegisClassifier` (content safety) and
`InstructionDataGuardClassifier` (LLM poisoning triggers), as NeMo Curator 0.7.1 computes them.

- Aegis wraps each document's first `max_chars` characters in NeMo's LlamaGuard prompt (`format_aegis`,
  with its 4-space indentation quirk and the O1..O13 category text), lets the model answer greedily
  (at most 100 new tokens) and parses the answer: "safe", a single category "O1".."O13" on the second
  line of an "unsafe" answer, anything else "unknown" (`parse_aegis_response`). `aegis_pred` holds one of
  `AEGIS_LABELS`; `keep_raw_pred` keeps the answer text in `raw_pred_column`; `filter_by` filters on it.
- Instruction data guard runs the raw document (truncated at 4,096 tokens; `max_chars` is accepted and
  unused, as in NeMo 0.7.1; an empty document is read as "unknown", as crossfit does) through LlamaGuard
  with the Defensive Aegis adapter, takes the last layer's hidden state at the last token and scores it
  with the guard net: `instruction_data_guard_poisoning_score` (sigmoid) and `is_poisoned` (score >= 0.5).
  It never filters and has no labels (`get_labels()` is None). As in NeMo, its `pred_column` attribute
  names the score column (the `pred_column` argument names the flag column, kept as `_pred_column`).

Differences from NeMo kept on purpose: `device_type` defaults to "auto" (CUDA when visible, else CPU);
the keywords `model=` (hub id or local dir: the adapter for Aegis, the guard net for instruction data
guard), `revision=`, `base_model=` (LlamaGuard-7b or a local copy), `aegis_adapter=`, `device=` and
`token_budget=`; `precision=` auto, bf16 or fp32 (auto: bf16 on GPUs and CPUs with native bf16, else
fp32; int8 is refused).
The model runs in this process, not through the DeBERTa inference engine (`uses_inference_engine`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpc_classify.classifiers import runtime
from hpc_classify.classifiers.aegis_prompt import (
    AEGIS_LABELS,
    POISONED_THRESHOLD,
    UNSAFE_CATEGORIES,
    format_aegis,
    parse_aegis_response,
)
from hpc_classify.classifiers.inherited_keywords import inherited_keywords
from hpc_classify.classifiers.llama_guard_base import DEFAULT_BATCH_SIZE, LlamaGuardClassifier, check_name
from hpc_classify.classifiers.own_columns import check_column_name
from hpc_classify.classifiers.value_counts import TENTHS, count_values
from hpc_classify.errors import ConfigError
from hpc_classify.models.llama_guard import (  # constants only: no torch at import
    AEGIS_DEFENSIVE,
    AEGIS_PERMISSIVE,
    INSTRUCTION_DATA_GUARD,
    LLAMA_GUARD_BASE,
)

if TYPE_CHECKING:
    import torch

# NeMo's column names for the instruction data guard: the poisoning score, and the flag of a score >= 0.5.
GUARD_SCORE_COLUMN = "instruction_data_guard_poisoning_score"
GUARD_FLAG_COLUMN = "is_poisoned"

__all__ = [
    "AEGIS_LABELS",
    "POISONED_THRESHOLD",
    "UNSAFE_CATEGORIES",
    "AegisClassifier",
    "InstructionDataGuardClassifier",
    "format_aegis",
    "parse_aegis_response",
]


@inherited_keywords
class AegisClassifier(LlamaGuardClassifier):
    """NVIDIA Aegis content safety (LlamaGuard-7b + the Defensive or Permissive LoRA adapter): `aegis_pred`
    is "safe", one of the categories "O1".."O13", or "unknown" (an answer that does not parse).

    Arguments as NeMo Curator 0.7.1's (same order and defaults, except device_type "auto"), plus the
    keywords `model` (the adapter: hub id or local directory; same as aegis_variant), `revision` (of the
    adapter), `base_model` (hub id or local directory), `device` and `token_budget` (padded tokens per
    generate() call). The base model is gated: accept its license on the hub and log in (or pass token).
    """

    default_pred_column = "aegis_pred"

    def __init__(
        self,
        aegis_variant: str = AEGIS_DEFENSIVE,
        token: str | bool | None = None,
        filter_by: list[str] | None = None,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        text_field: str = "text",
        pred_column: str | None = "aegis_pred",  # None: the default (a YAML null), checked by the base
        raw_pred_column: str = "_aegis_raw_pred",
        keep_raw_pred: bool = False,
        max_chars: int = 6000,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        *,
        model: str | None = None,
        revision: str | None = None,
        base_model: str = LLAMA_GUARD_BASE,
        **inherited: Any,
    ):
        if model is not None and aegis_variant not in (AEGIS_DEFENSIVE, model):
            raise ConfigError(
                f"model={model!r} and aegis_variant={aegis_variant!r} disagree: give one of them",
                hint=f"both name the Aegis LoRA adapter, e.g. {AEGIS_DEFENSIVE} or {AEGIS_PERMISSIVE}",
            )
        adapter = model if model is not None else aegis_variant
        check_column_name(type(self).__name__, "raw_pred_column", raw_pred_column)
        if not isinstance(keep_raw_pred, bool):
            raise ConfigError(f"keep_raw_pred must be true or false, not {keep_raw_pred!r}")
        super().__init__(
            adapter=adapter,
            revision=revision,
            base_model=base_model,
            token=token,
            device_type=device_type,
            filter_by=filter_by,
            batch_size=batch_size,
            text_field=text_field,
            pred_column=pred_column,
            max_chars=max_chars,
            autocast=autocast,
            max_mem_gb=max_mem_gb,
            **inherited,
        )
        self.aegis_variant = adapter
        self.revision = revision
        self.raw_pred_column = raw_pred_column
        self.keep_raw_pred = keep_raw_pred
        self.labels  # noqa: B018 -- filter_by checked against AEGIS_LABELS now, not on a worker

    @property
    def model(self) -> str:
        """The adapter (hub id or directory): the `model=` keyword."""
        return self.aegis_variant

    def load_labels(self) -> list[str]:
        return list(AEGIS_LABELS)

    def model_identity(self) -> dict[str, Any]:
        return {"aegis_variant": self.aegis_variant, "revision": self.revision, "base_model": self.base_model}

    def model_fingerprint(self) -> dict[str, Any]:
        return {**self.model_identity(), **self._common_fingerprint()}

    def output_columns(self) -> list[str]:
        return [*([self.raw_pred_column] if self.keep_raw_pred else []), self.pred_column]  # NeMo's order

    def output_meta(self) -> dict[str, Any]:
        return dict.fromkeys(self.output_columns(), "str")

    def prompts(self, texts: list[str]) -> list[str]:
        return [format_aegis(text[: self.max_chars]) for text in texts]

    def raw_responses(self, texts: list[str]) -> list[str]:
        """The model's answers (prompt stripped) to `texts`, in order."""
        from hpc_classify.models.llama_guard_inference import generate_responses

        if not texts:
            return []
        device = self.prepare_device()
        max_documents, token_budget = self._batch_limits(device)
        return generate_responses(
            self._loaded(device), self.prompts(texts), max_documents=max_documents, token_budget=token_budget
        )

    def columns_for_texts(self, texts: list[str]) -> dict[str, Any]:
        responses = self.raw_responses(texts)
        columns: dict[str, Any] = {self.raw_pred_column: responses} if self.keep_raw_pred else {}
        columns[self.pred_column] = [parse_aegis_response(r) for r in responses]
        return columns


@inherited_keywords
class InstructionDataGuardClassifier(LlamaGuardClassifier):
    """NVIDIA instruction data guard (LLM poisoning triggers): `instruction_data_guard_poisoning_score`
    (0..1) and `is_poisoned` (score >= 0.5), from LlamaGuard-7b + the Defensive Aegis adapter's last hidden
    state and the guard net of nvidia/instruction-data-guard. Expects "Instruction: ... Input: ...
    Response: ..." text. No filter_by and no labels, as in NeMo.

    Arguments as NeMo Curator 0.7.1's (note autocast before device_type; device_type defaults to "auto"),
    plus the keywords `model` (the guard net: hub id or local directory), `revision` (of the guard net),
    `base_model`, `aegis_adapter` (the LoRA adapter the guard net was trained on), `device`, `token_budget`.
    """

    _adapter_has_revision = False  # `revision` is the guard net's
    filters_by_label = False  # a score and a flag: NeMo passes filter_by=None
    # Kept in the signature for NeMo's scripts, but a setting in a run's config that cannot take effect is
    # refused there (registry.classifier_from_spec), with why.
    UNUSED_ARGUMENTS = {"max_chars": "it reads each document's first 4,096 tokens, as NeMo's guard does"}

    def __init__(
        self,
        token: str | bool | None = None,
        batch_size: int | None = DEFAULT_BATCH_SIZE,
        text_field: str = "text",
        pred_column: str | None = GUARD_FLAG_COLUMN,
        prob_column: str | None = GUARD_SCORE_COLUMN,
        max_chars: int = 6000,
        autocast: bool = True,
        device_type: str = "auto",
        max_mem_gb: int | None = None,
        *,
        model: str | None = None,
        revision: str | None = None,
        base_model: str = LLAMA_GUARD_BASE,
        aegis_adapter: str = AEGIS_DEFENSIVE,
        **inherited: Any,
    ):
        # None is the default column (a YAML null is "not set"), as for every classifier's pred_column.
        pred_column = GUARD_FLAG_COLUMN if pred_column is None else pred_column
        prob_column = GUARD_SCORE_COLUMN if prob_column is None else prob_column
        check_column_name(type(self).__name__, "pred_column", pred_column)
        check_column_name(type(self).__name__, "prob_column", prob_column)
        guard = INSTRUCTION_DATA_GUARD if model is None else model
        check_name(model=guard)
        super().__init__(
            adapter=aegis_adapter,
            revision=revision,
            base_model=base_model,
            token=token,
            device_type=device_type,
            batch_size=batch_size,
            text_field=text_field,
            pred_column=prob_column,  # as NeMo passes it to its base: see the `pred_column` property
            prob_column=prob_column,
            max_chars=None,  # unused, so unchecked: NeMo accepts any value here (-1, 0, ...)
            autocast=autocast,
            max_mem_gb=max_mem_gb,
            **inherited,
        )
        self.max_chars = max_chars  # read as NeMo's attribute; never applied
        self.model = guard
        self.revision = revision
        self.aegis_adapter = aegis_adapter
        self._pred_column = pred_column  # the flag column, under NeMo's name for it

    @property
    def pred_column(self) -> str:
        """The score column, as NeMo's `pred_column` attribute is (NeMo hands its base `prob_column` there;
        this classifier filters nothing): the same attribute as `prob_column`, so setting it renames the
        score column. The flag column (the `pred_column` argument) is `_pred_column`, as in NeMo."""
        return self.prob_column

    @pred_column.setter
    def pred_column(self, value: str) -> None:
        self.prob_column = value

    out_dim = 1  # NeMo's value: one score

    def load_labels(self) -> list[str]:
        return []  # a score, not classes

    def get_labels(self) -> None:
        """As NeMo: no labels."""
        return None

    def _guard_dir(self):
        from hpc_classify.models.llama_guard import resolve_guard_dir

        return self._hub_pins.resolve(resolve_guard_dir, self.model, self.revision, token=self.token)

    def pin_models(self) -> None:
        super().pin_models()
        self._guard_dir()

    def load_guard_net(self, device: torch.device) -> Any:
        """The guard net on `device`, cached per process."""
        from hpc_classify.models.llama_guard_loading import load_guard_net

        guard_dir = self._guard_dir()
        return runtime.cached_model(
            ("guard-net", str(guard_dir), str(device)), lambda: load_guard_net(guard_dir, device)
        )

    def model_identity(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "revision": self.revision,
            "aegis_adapter": self.aegis_adapter,
            "base_model": self.base_model,
        }

    def model_fingerprint(self) -> dict[str, Any]:
        from hpc_classify.models.checkpoint_meta import checkpoint_hash

        return {
            **self.model_identity(),
            "guard_hash": checkpoint_hash(self._guard_dir()),
            **self._common_fingerprint(),
        }

    def output_columns(self) -> list[str]:
        return [self.prob_column, self._pred_column]  # NeMo's order

    def output_meta(self) -> dict[str, Any]:
        # float32, as NeMo's guard net returns it
        return {self.prob_column: "float32", self._pred_column: "bool"}

    def scores(self, texts: list[str]) -> np.ndarray:
        """Poisoning scores (float32) of `texts`, in order."""
        from hpc_classify.errors import CheckpointFormatError
        from hpc_classify.models.llama_guard_inference import guard_scores, last_hidden_states

        if not texts:
            return np.zeros(0, dtype=np.float32)
        device = self.prepare_device()
        loaded = self._loaded(device)
        net = self.load_guard_net(device)
        if net.input_layer.in_features != loaded.hidden_size:
            raise CheckpointFormatError(
                f"guard net {self.model} takes {net.input_layer.in_features} inputs but the base model "
                f"{self.base_model} has hidden size {loaded.hidden_size}"
            )
        max_documents, token_budget = self._batch_limits(device)
        documents = [text if text else "unknown" for text in texts]  # crossfit's Tokenizer does this
        hidden = last_hidden_states(loaded, documents, max_documents=max_documents, token_budget=token_budget)
        return guard_scores(net, hidden, device)

    def columns_for_texts(self, texts: list[str]) -> dict[str, Any]:
        score = self.scores(texts)
        return {self.prob_column: score.astype(np.float32), self._pred_column: score >= POISONED_THRESHOLD}

    def output_counts(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        flags = (bool(value) for value in frame[self._pred_column].tolist())
        scores = np.round(frame[self.prob_column].to_numpy(dtype=np.float64), 1).tolist()
        return {
            self._pred_column: count_values(flags, ("True", "False")),
            self.prob_column: count_values((f"{value:.1f}" for value in scores), TENTHS),
        }
