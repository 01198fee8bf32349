"""The fault-injection tier: each fault a week-long run meets, injected for real (files rewritten between
runs, worker processes killed, a tiny tmpfs filled up, ...) and checked for exactly-once outputs, no
partial or temp files, the exit code and the message. Every test here carries the `faults` marker.

Shares tests/integration/driver_support.py (imported as `driver_support`; tests/ is not a package).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SUPPORT_PATH = Path(__file__).resolve().parents[1] / "integration" / "driver_support.py"


def _load_support() -> None:
    if "driver_support" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("driver_support", SUPPORT_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["driver_support"] = module
    spec.loader.exec_module(module)


_load_support()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.faults)
