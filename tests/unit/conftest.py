"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

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


@pytest.fixture
def offline_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HF_HOME with the hub switched off, as on a compute node (its cache: `offline_home / "hub"`)."""
    home = tmp_path / "hf-home"
    home.mkdir()
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return home
