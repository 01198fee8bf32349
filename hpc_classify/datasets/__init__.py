"""NeMo Curator's `nemo_curator.datasets`: `from hpc_classify.datasets import DocumentDataset`."""

from hpc_classify.datasets.doc_dataset import DocumentDataset

__all__ = ["DocumentDataset"]
