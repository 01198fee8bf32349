"""GPU tier: these tests run only where CUDA is visible (a lent GPU machine, a real cluster)."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a visible CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
