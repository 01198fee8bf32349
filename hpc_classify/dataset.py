"""Kept for imports written before `hpc_classify.datasets` (NeMo Curator's layout): the same class."""

from hpc_classify.datasets.doc_dataset import DocumentDataset
from hpc_classify.datasets.reading import FILENAME_COLUMN

__all__ = ["FILENAME_COLUMN", "DocumentDataset"]
