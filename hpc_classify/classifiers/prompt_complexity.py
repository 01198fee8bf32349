"""`PromptTaskComplexityClassifier`: nvidia/prompt-task-and-complexity-classifier, as NeMo Curator 0.7.1 computes it.

One column per target of the checkpoint's config (`targets`): the two most likely task types and the first
one's probability, one score per complexity dimension (the softmax of its head weighted by `weights_map`,
divided by `divisor_map`, rounded to 4 decimals; few-shot scores under 0.05 become 0), and
`prompt_complexity_score` = 0.35 creativity + 0.25 reasoning + 0.15 constraints + 0.15 domain knowledge
+ 0.05 contextual knowledge + 0.05 few shots, rounded to 5 decimals. No `filter_by`, no labels (as NeMo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpc_classify.classifiers.base import LoadedComponents
from hpc_classify.classifiers.checkpoint_classifier import CheckpointClassifier
from hpc_classify.classifiers.inherited_keywords import inherited_keywords
from hpc_classify.classifiers.value_counts import TENTHS, count_values

if TYPE_CHECKING:
    import torch

PROMPT_TASK_COMPLEXITY_IDENTIFIER = "nvidia/prompt-task-and-complexity-classifier"
TASK_TYPE_TARGET = "task_type"
SECOND_TASK_MIN_PROBABILITY = 0.1  # below it (after rounding to 3 decimals) task_type_2 is "NA"
FEW_SHOTS_FLOOR = 0.05
COMPLEXITY_WEIGHTS = {
    "creativity_scope": 0.35,
    "reasoning": 0.25,
    "constraint_ct": 0.15,
    "domain_knowledge": 0.15,
    "contextual_knowledge": 0.05,
    "number_of_few_shots": 0.05,
}
COMPLEXITY_COLUMN = "prompt_complexity_score"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise float32 softmax by torch, as NeMo's `torch.softmax(preds, dim=1)`: numpy's exp differs from
    torch's in the last bit of most rows, which moved a 4-decimal score in a few rows in 10,000. Each row's
    result does not depend on the rows beside it (so not on batching)."""
    import torch

    rows = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
    return torch.softmax(rows, dim=1).numpy()


def complexity_columns(outputs: np.ndarray, config: dict[str, Any]) -> dict[str, list]:
    """The NeMo post-processing of every head's logits (side by side in `outputs`, heads in config order):
    NeMo's `CustomHFDeberta.compute_results` and `process_logits`, to the bit for the same logits."""
    sizes = {name: int(size) for name, size in config["target_sizes"].items()}
    bounds = np.cumsum([0, *sizes.values()])
    logits = {name: outputs[:, bounds[i] : bounds[i + 1]] for i, name in enumerate(sizes)}
    columns: dict[str, list] = {}
    task_logits = logits[TASK_TYPE_TARGET]
    top2 = np.argsort(-task_logits, axis=1, kind="stable")[:, :2]
    top2_p = np.take_along_axis(softmax(task_logits), top2, axis=1)
    names = config["task_type_map"]
    first, second, first_p = [], [], []
    for indices, probabilities in zip(top2, top2_p, strict=True):
        rounded = [round(float(p), 3) for p in probabilities]
        first.append(names[str(indices[0])])
        second.append(names[str(indices[1])] if rounded[1] >= SECOND_TASK_MIN_PROBABILITY else "NA")
        first_p.append(rounded[0])
    columns.update(task_type_1=first, task_type_2=second, task_type_prob=first_p)
    scores: dict[str, np.ndarray] = {}
    for name in sizes:
        if name == TASK_TYPE_TARGET:
            continue
        # float64 as in NeMo (float32 probabilities times its integer weights array, over a Python number):
        # in float32 the 4-decimal scores differ from NeMo's in about 1 row in 1,000.
        weights = np.asarray(config["weights_map"][name], dtype=np.float64)
        probabilities = softmax(logits[name]).astype(np.float64)
        raw = (probabilities * weights).sum(axis=1) / float(config["divisor_map"][name])
        # NeMo's round(value, 4) on a np.float64 is numpy's rounding (scale, round half to even, unscale),
        # not Python's correctly rounded decimal one (rarely different at 4 decimals, in about 15% of rows at 5).
        scores[name] = np.round(raw, 4)
        if name == "number_of_few_shots":
            scores[name] = np.where(scores[name] >= FEW_SHOTS_FLOOR, scores[name], 0.0)
    # NeMo's sum, term by term in this order (float64), rounded by numpy too (Python's round differed from
    # it in about 15% of rows by 1e-5).
    total = np.zeros(len(outputs), dtype=np.float64)
    for name, weight in COMPLEXITY_WEIGHTS.items():
        total = total + weight * scores[name]
    scores[COMPLEXITY_COLUMN] = np.round(total, 5)
    columns.update({name: values.tolist() for name, values in scores.items()})
    return {target: columns[target] for target in config["targets"]}


@inherited_keywords
class PromptTaskComplexityClassifier(CheckpointClassifier):
    """Task types and complexity dimensions of prompts (columns named by the checkpoint's `targets`)."""

    out_dim = None  # NeMo's value: several heads of different sizes
    filters_by_label = False  # NeMo's raises NotImplementedError("filter_by not supported ...")

    def __init__(
        self,
        batch_size: int = 256,
        text_field: str = "text",
        max_chars: int = 2000,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        *,
        model: str | None = None,
        revision: str | None = None,
        max_tokens: int | None = None,
        **inherited: Any,
    ):
        super().__init__(
            model or PROMPT_TASK_COMPLEXITY_IDENTIFIER,
            revision=revision,
            batch_size=batch_size,
            text_field=text_field,
            pred_column=COMPLEXITY_COLUMN,
            max_chars=max_chars,
            max_tokens=max_tokens,
            device_type=device_type,
            autocast=autocast,
            max_mem_gb=max_mem_gb,
            **inherited,
        )
        self._config: dict[str, Any] | None = None

    def _checkpoint_config(self) -> dict[str, Any]:
        from hpc_classify.models.multihead import read_multihead_config

        if self._config is None:
            self._config = read_multihead_config(self._model_dir(), self.model)
        return self._config

    # -- loading ---------------------------------------------------------------------------------
    def load_labels(self) -> list[str]:
        """The task type names (what the markers count); NeMo's `get_labels` has none."""
        task_types = self._checkpoint_config()["task_type_map"]
        return [task_types[key] for key in sorted(task_types, key=int)]

    def get_labels(self) -> list[str]:
        raise NotImplementedError(
            "PromptTaskComplexityClassifier has no single label set: its columns are the checkpoint's targets "
            "(see the model card of nvidia/prompt-task-and-complexity-classifier)"
        )

    def load_components(self, device: torch.device) -> LoadedComponents:
        from hpc_classify.models.multihead import load_multihead_checkpoint

        loaded = load_multihead_checkpoint(self.model, revision=self._load_revision(), device=device)
        self._config = loaded.config
        return LoadedComponents(loaded.model, loaded.tokenizer, self.load_labels())

    def load_model(self, device: torch.device) -> Any:
        return self.load_components(device).model

    # -- outputs ---------------------------------------------------------------------------------
    def output_columns(self) -> list[str]:
        return list(self._checkpoint_config()["targets"])

    def output_meta(self) -> dict[str, Any]:
        kinds = self._checkpoint_config().get("model_output_type") or {}
        strings = {"task_type_1", "task_type_2"} | {t for t, kind in kinds.items() if kind == "string"}
        return {target: "str" if target in strings else "float64" for target in self.output_columns()}

    def columns_from_outputs(self, outputs: np.ndarray, labels: list[str]) -> dict[str, Any]:
        return complexity_columns(outputs, self._checkpoint_config())

    def output_counts(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        scores = (f"{round(float(value), 1):.1f}" for value in frame[COMPLEXITY_COLUMN].tolist())
        return {
            "task_type_1": count_values(frame["task_type_1"].tolist(), self.labels),
            COMPLEXITY_COLUMN: count_values(scores, TENTHS),
        }
