"""NeMo Curator 0.7.1's `BaseModule` surface (nemo_curator/modules/base.py), so that a NeMo `Sequential` or a
user's own module can drive our classifiers as it drives NeMo's: `name`, `input_backend`, `call(dataset)`,
and `__call__`, which checks the dataset's backend and then runs `call`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hpc_classify.errors import ConfigError

if TYPE_CHECKING:
    from hpc_classify.datasets import DocumentDataset

SUPPORTED_BACKENDS = ("pandas", "cudf", "any")


def dataset_backend(dataset: DocumentDataset) -> str:
    """ "cudf" or "pandas": the type of the dataset's partitions (from the Dask frame's metadata)."""
    frame = getattr(dataset.df, "_meta", dataset.df)
    return "cudf" if type(frame).__module__.startswith("cudf") else "pandas"


class NemoModule:
    """Mixed into `DistributedDataClassifier`, which supplies `call`."""

    SUPPORTED_BACKENDS = list(SUPPORTED_BACKENDS)
    # NeMo's classifiers say "cudf" (they run on GPUs only). Ours take pandas and cuDF partitions alike
    # (a cuDF partition is classified on the host and handed back as cuDF: FrameMethods.classify_frame).
    # Set on an instance it stays out of the model identity too (ClassifierIdentity.BASE_ATTRIBUTES).
    input_backend: str = "any"

    @property
    def name(self) -> str:
        """NeMo's module name: the class's name unless set (NeMo's classifiers never pass one)."""
        return self.__dict__.get("_name") or type(self).__name__

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    def call(self, dataset: DocumentDataset) -> DocumentDataset:
        raise NotImplementedError("call method must be implemented by subclasses")

    def __call__(self, dataset: DocumentDataset) -> Any:
        """As NeMo's `BaseModule.__call__`: refuse a dataset on a backend this module does not take, then
        `self.call(dataset)` (so that a subclass overriding `call` changes both)."""
        if self.input_backend not in SUPPORTED_BACKENDS:  # NeMo checks it in __init__; ours can be set later
            raise ConfigError(
                f"{self.input_backend} not one of the supported backends {self.SUPPORTED_BACKENDS}"
            )
        backend = dataset_backend(dataset)
        if self.input_backend != "any" and backend != self.input_backend:
            raise ConfigError(
                f"Module {self.name} requires dataset to have backend {self.input_backend} but got "
                f"backend {backend}.",
                hint="read the dataset with backend= that backend, or set input_backend = 'any'",
            )
        return self.call(dataset)
