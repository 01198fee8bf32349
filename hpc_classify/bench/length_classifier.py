"""A classifier with no model (label = is the document longer than 1,000 characters): the piece benchmark
measures the driver, readers, writers and markers, which a transformer's cost would hide."""

from __future__ import annotations

from typing import Any

from hpc_classify.classifiers.base import DistributedDataClassifier


class LengthClassifier(DistributedDataClassifier):
    uses_inference_engine = False
    default_pred_column = "length_pred"

    def __init__(self, **kwargs: Any):
        super().__init__(prob_column=None, **kwargs)

    def load_labels(self) -> list[str]:
        return ["short", "long"]

    def load_model(self, device: Any) -> Any:
        raise NotImplementedError("LengthClassifier has no model")

    def load_tokenizer(self) -> Any:
        raise NotImplementedError("LengthClassifier has no tokenizer")

    def output_meta(self) -> dict[str, Any]:
        return {self.pred_column: "str"}

    def columns_for_texts(self, texts: list[str]) -> dict[str, Any]:
        return {self.pred_column: ["long" if len(text) > 1000 else "short" for text in texts]}
