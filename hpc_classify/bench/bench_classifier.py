"""The benchmark's seeded base-sized model as a classifier, so that the Dask path runs through the driver
exactly as `hpc-classify run` does (files in, files and markers out), not through a shortcut."""

from __future__ import annotations

import hashlib
from typing import Any

from hpc_classify.classifiers.base import DistributedDataClassifier

PROBABILITIES_COLUMN = "probabilities"


class BenchClassifier(DistributedDataClassifier):
    """`build_base_sized_classifier(num_labels, seed)` with the benchmark's trained tokenizer; writes the
    probabilities, which the benchmark compares with the single-process engine's."""

    def __init__(
        self,
        *,
        tokenizer_json: str,
        seed: int,
        num_labels: int,
        max_chars: int,
        max_tokens: int,
        precision: str,
    ):
        super().__init__(
            max_chars=max_chars,
            max_tokens=max_tokens,
            device="cpu",
            precision=precision,
            compile=False,  # eager, like the engine_<precision> row it is compared with
            prob_column=PROBABILITIES_COLUMN,
        )
        self.seed = seed
        self.num_labels = num_labels
        # The tokenizer travels as its JSON (the fast tokenizer object does not pickle); the identity names
        # it by hash, so that fingerprints and the per-process engine key stay small.
        self._tokenizer_json = tokenizer_json
        self.tokenizer_sha256 = hashlib.sha256(tokenizer_json.encode()).hexdigest()[:16]

    def load_model(self, device: Any) -> Any:
        from hpc_classify.bench.model import build_base_sized_classifier

        return build_base_sized_classifier(self.num_labels, seed=self.seed).to(device)

    def load_tokenizer(self) -> Any:
        from hpc_classify.bench.corpus import wrap_tokenizer

        return wrap_tokenizer(self._tokenizer_json, self.max_tokens or 512)

    def load_labels(self) -> list[str]:
        return [f"label_{i}" for i in range(self.num_labels)]
