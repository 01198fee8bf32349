"""hpc_classify.cluster.main_guard: which line of a script counts as under `if __name__ == "__main__":`,
and the refusal in a process that is still importing its parent's main module. The scripts themselves, run
with `python script.py`: tests/integration/test_script_guard.py."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from hpc_classify.cluster.main_guard import _guarded, refuse_start_while_importing_main, refuse_unguarded_main
from hpc_classify.errors import ConfigError

SCRIPT = """\
import os
client = start()                      # 2: top level
if __name__ == "__main__":
    client = start()                  # 4
if "__main__" == __name__ and True:
    client = start()                  # 6
try:
    if __name__ == "__main__":
        client = start()              # 9: nested in a try
except ValueError:
    client = start()                  # 11: the try's handler, outside the guard
if os.environ.get("X"):
    client = start()                  # 13: an if that is no guard
"""


@pytest.mark.parametrize(
    ("line", "guarded"), [(2, False), (4, True), (6, True), (9, True), (11, False), (13, False)]
)
def test_which_lines_are_under_the_guard(tmp_path: Path, line: int, guarded: bool) -> None:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    assert _guarded(str(script), line) is guarded


@pytest.mark.parametrize("source", [None, "def broken(:\n"])
def test_a_script_that_cannot_be_read_counts_as_guarded(tmp_path: Path, source: str | None) -> None:
    script = tmp_path / "script.py"
    if source is not None:
        script.write_text(source)
    assert _guarded(str(script), 1)


def test_nothing_is_refused_outside_a_main_script() -> None:
    refuse_start_while_importing_main()  # pytest's process is not importing a parent's main module
    refuse_unguarded_main(RuntimeError("Nanny failed to start."))  # this test's code is no script's top level


def test_a_process_importing_its_parents_main_module_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    # The state multiprocessing's spawn sets while the child imports the parent's main module.
    monkeypatch.setattr(multiprocessing.current_process(), "_inheriting", True, raising=False)
    with pytest.raises(
        ConfigError, match=r"starts a local Dask cluster when it is imported, outside `if __name__"
    ):
        refuse_start_while_importing_main()
