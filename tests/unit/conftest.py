"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
from nemo_corpus import write_jsonl_files, write_parquet_files


@pytest.fixture
def nemo_jsonl_files(tmp_path):
    """NeMo Curator's test corpus as JSONL (see tests/nemo_corpus.py)."""
    return write_jsonl_files(tmp_path / "nemo_jsonl")


@pytest.fixture
def nemo_parquet_files(tmp_path):
    """NeMo Curator's test corpus as Parquet (see tests/nemo_corpus.py)."""
    return write_parquet_files(tmp_path / "nemo_parquet")
