"""The FineWeb-Edu family: BERT-family sequence regressors scoring educational value 0..5.

As NeMo Curator 0.7.1 computes them: the model's single output is the score, clipped to [0, 5]; the
integer column is the score rounded half to even (cuDF's `round`: 2.5 -> 2); the Mixtral- and
Nemotron-annotated variants add a label column, `high_quality` when the score is >= 2.5, else
`low_quality`. No `filter_by` (NeMo does not filter on a numeric score). Markers and `status` count the
integer scores (and the labels).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from hpc_classify.classifiers.base import LoadedComponents
from hpc_classify.classifiers.checkpoint_classifier import CheckpointClassifier
from hpc_classify.classifiers.inherited_keywords import inherited_keywords
from hpc_classify.classifiers.own_columns import check_column_name
from hpc_classify.classifiers.value_counts import count_values

if TYPE_CHECKING:
    import torch

FINEWEB_EDU_IDENTIFIER = "HuggingFaceFW/fineweb-edu-classifier"
FINEWEB_MIXTRAL_IDENTIFIER = "nvidia/nemocurator-fineweb-mixtral-edu-classifier"
FINEWEB_NEMOTRON_IDENTIFIER = "nvidia/nemocurator-fineweb-nemotron-4-edu-classifier"
HIGH_QUALITY_THRESHOLD = 2.5
SCORE_RANGE = (0.0, 5.0)


def fineweb_scores(raw: np.ndarray) -> np.ndarray:
    """Clip like NeMo (`where(s >= 0, 0)`, then `where(s <= 5, 5)`: NaN becomes 0), in float32."""
    score = raw.astype(np.float32).reshape(-1)
    score = np.where(score >= SCORE_RANGE[0], score, np.float32(SCORE_RANGE[0]))
    return np.where(score <= SCORE_RANGE[1], score, np.float32(SCORE_RANGE[1])).astype(np.float32)


@inherited_keywords
class _FineWebBaseClassifier(CheckpointClassifier):
    """A sequence-regression checkpoint in the Hugging Face layout (config.json, model.safetensors,
    BERT tokenizer files), loaded strictly by `models.checkpoint.load_sequence_regressor`."""

    filters_by_label = False  # a numeric score: NeMo passes filter_by=None

    def __init__(
        self,
        fineweb_identifier: str,
        pred_column: str,
        int_column: str,
        quality_label_column: str | None,
        batch_size: int = 1024,
        text_field: str = "text",
        max_chars: int = -1,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        *,
        model: str | None = None,
        revision: str | None = None,
        max_tokens: int | None = None,
        **inherited: Any,
    ):
        check_column_name(type(self).__name__, "int_column", int_column)
        # None: no label column, as NeMo's `is not None`; "" would name no column silently.
        check_column_name(type(self).__name__, "quality_label_column", quality_label_column, optional=True)
        if max_chars is None or max_chars == -1:
            max_chars = None  # NeMo's default: no character cut, the tokenizer truncates
        super().__init__(
            model or fineweb_identifier,
            revision=revision,
            batch_size=batch_size,
            text_field=text_field,
            pred_column=pred_column,
            max_chars=max_chars,
            max_tokens=max_tokens,
            device_type=device_type,
            autocast=autocast,
            max_mem_gb=max_mem_gb,
            **inherited,
        )
        self.int_column = int_column
        self.quality_label_column = quality_label_column

    out_dim = 1  # NeMo's value: one score

    @property
    def fineweb_identifier(self) -> str:
        """NeMo's name for the checkpoint: `model` (setting it changes the model loaded)."""
        return self.model

    @fineweb_identifier.setter
    def fineweb_identifier(self, value: str) -> None:
        self.model = str(value)

    # -- loading: a plain Hugging Face regression checkpoint ------------------------------------
    def load_labels(self) -> list[str]:
        """[] (a score, not classes); config.json is read and checked for one output here, where the
        driver asks for labels before any worker starts, as every checkpoint classifier's."""
        from hpc_classify.models.checkpoint_meta import check_regressor_config
        from hpc_classify.models.hub import read_json_file

        config = read_json_file(self._model_dir() / "config.json", f"classifier {self.model}")
        check_regressor_config(config, self.model)
        return []

    def get_labels(self) -> None:
        """As NeMo: a regressor has no labels."""
        return None

    def load_model(self, device: torch.device) -> Any:
        from hpc_classify.models.checkpoint import load_sequence_regressor

        return load_sequence_regressor(self._model_dir(), device, self.model)

    def load_components(self, device: torch.device) -> LoadedComponents:
        from hpc_classify.models.checkpoint import check_tokenizer_fits

        model, tokenizer = self.load_model(device), self.load_tokenizer()
        check_tokenizer_fits(tokenizer, model.get_input_embeddings().num_embeddings, self._model_dir())
        return LoadedComponents(model, tokenizer, [])

    # -- outputs ---------------------------------------------------------------------------------
    def output_columns(self) -> list[str]:
        label = [self.quality_label_column] if self.quality_label_column else []
        return [self.pred_column, self.int_column, *label]

    def output_meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {self.pred_column: "float32", self.int_column: "int64"}
        if self.quality_label_column:
            meta[self.quality_label_column] = "str"
        return meta

    def columns_from_outputs(self, outputs: np.ndarray, labels: list[str]) -> dict[str, Any]:
        score = fineweb_scores(outputs[:, 0] if outputs.ndim == 2 else outputs)
        columns: dict[str, Any] = {self.pred_column: score, self.int_column: np.round(score).astype(np.int64)}
        if self.quality_label_column:
            columns[self.quality_label_column] = np.where(
                score >= HIGH_QUALITY_THRESHOLD, "high_quality", "low_quality"
            )
        return columns

    def output_counts(self, frame: pd.DataFrame) -> dict[str, dict[str, int]]:
        counts = {self.int_column: count_values(frame[self.int_column].tolist(), map(str, range(6)))}
        if self.quality_label_column:
            values = frame[self.quality_label_column].tolist()
            counts[self.quality_label_column] = count_values(values, ("high_quality", "low_quality"))
        return counts


@inherited_keywords
class FineWebEduClassifier(_FineWebBaseClassifier):
    """HuggingFaceFW/fineweb-edu-classifier: `fineweb-edu-score` (0..5) and `fineweb-edu-score-int`."""

    default_pred_column = "fineweb-edu-score"  # pred_column=None

    def __init__(
        self,
        batch_size: int = 256,
        text_field: str = "text",
        pred_column: str = "fineweb-edu-score",
        int_column: str = "fineweb-edu-score-int",
        max_chars: int = -1,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        **inherited: Any,
    ):
        super().__init__(
            FINEWEB_EDU_IDENTIFIER,
            pred_column,
            int_column,
            None,
            batch_size,
            text_field,
            max_chars,
            device_type,
            autocast,
            max_mem_gb,
            **inherited,
        )


@inherited_keywords
class FineWebMixtralEduClassifier(_FineWebBaseClassifier):
    """nvidia/nemocurator-fineweb-mixtral-edu-classifier: score, int score and high/low quality label."""

    default_pred_column = "fineweb-mixtral-edu-score"  # pred_column=None

    def __init__(
        self,
        batch_size: int = 1024,
        text_field: str = "text",
        pred_column: str = "fineweb-mixtral-edu-score",
        int_column: str = "fineweb-mixtral-edu-score-int",
        quality_label_column: str = "fineweb-mixtral-edu-score-label",
        max_chars: int = -1,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        **inherited: Any,
    ):
        super().__init__(
            FINEWEB_MIXTRAL_IDENTIFIER,
            pred_column,
            int_column,
            quality_label_column,
            batch_size,
            text_field,
            max_chars,
            device_type,
            autocast,
            max_mem_gb,
            **inherited,
        )


@inherited_keywords
class FineWebNemotronEduClassifier(_FineWebBaseClassifier):
    """nvidia/nemocurator-fineweb-nemotron-4-edu-classifier: score, int score and high/low quality label."""

    default_pred_column = "fineweb-nemotron-edu-score"  # pred_column=None

    def __init__(
        self,
        batch_size: int = 1024,
        text_field: str = "text",
        pred_column: str = "fineweb-nemotron-edu-score",
        int_column: str = "fineweb-nemotron-edu-score-int",
        quality_label_column: str = "fineweb-nemotron-edu-score-label",
        max_chars: int = -1,
        device_type: str = "auto",
        autocast: bool = True,
        max_mem_gb: int | None = None,
        **inherited: Any,
    ):
        super().__init__(
            FINEWEB_NEMOTRON_IDENTIFIER,
            pred_column,
            int_column,
            quality_label_column,
            batch_size,
            text_field,
            max_chars,
            device_type,
            autocast,
            max_mem_gb,
            **inherited,
        )
