"""Walking input directories: a directory that cannot be listed is an error naming it, never a silent skip."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mounts import bound_by_permissions

from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import expand_inputs, get_all_files_paths_under

REPO = Path(__file__).resolve().parents[2]


def _touch(root: Path, *relpaths: str) -> None:
    for rel in relpaths:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"text": "a"}\n')


# Each way in to the listing, as a user calls it; prints {call: files listed, or [error type, message]}.
_LIST_EVERY_WAY = """
import json, sys
from hpc_classify.datasets import DocumentDataset
from hpc_classify.io.discovery import expand_inputs, get_all_files_paths_under
root = sys.argv[1]
calls = {
    "expand_inputs": lambda: [f.relpath for f in expand_inputs([root])],
    "get_all_files_paths_under": lambda: get_all_files_paths_under(root),
    "read_json": lambda: DocumentDataset.read_json(root).df.compute()["text"].tolist(),
}
found = {}
for name, call in calls.items():
    try:
        found[name] = call()
    except Exception as exc:
        found[name] = [type(exc).__name__, str(exc)]
print(json.dumps(found))
"""


def test_a_directory_that_cannot_be_listed_is_an_error_for_every_caller(tmp_path):
    """For real: a mode-000 subdirectory, listed by a process that permission bits bind (root included)."""
    _touch(tmp_path / "corpus", "a.jsonl", "locked/b.jsonl")
    locked = tmp_path / "corpus" / "locked"
    locked.chmod(0)
    try:
        prefix = bound_by_permissions(locked)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        child = subprocess.run(
            [*prefix, sys.executable, "-c", _LIST_EVERY_WAY, str(tmp_path / "corpus")],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    finally:
        locked.chmod(0o755)
    assert child.returncode == 0, child.stderr
    found = json.loads(child.stdout.splitlines()[-1])
    for call, result in found.items():
        assert result[0] == "InputFileError", (call, result)
        assert result[1].startswith(f"{locked}: cannot list this input directory (EACCES"), (call, result)
        assert "HINT: make it readable" in result[1], (call, result)


@pytest.fixture
def failing_listing(tmp_path, monkeypatch):
    """A corpus whose `sub/` cannot be listed: os.scandir raises EIO there, as a failing NFS/Lustre does."""
    _touch(tmp_path / "corpus", "a.jsonl", "sub/b.jsonl", "sub2/c.jsonl")
    failing = str(tmp_path / "corpus" / "sub")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == failing:
            raise OSError(errno.EIO, os.strerror(errno.EIO), failing)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return tmp_path / "corpus"


@pytest.mark.parametrize(
    "listing",
    [
        lambda root: expand_inputs([str(root)]),
        lambda root: get_all_files_paths_under(str(root)),
        lambda root: get_all_files_paths_under(str(root), followlinks=True, keep_extensions="jsonl"),
    ],
    ids=["expand_inputs", "get_all_files_paths_under", "get_all_files_paths_under-followlinks"],
)
def test_an_io_error_listing_a_subdirectory_names_it(failing_listing, listing):
    with pytest.raises(InputFileError) as raised:
        listing(failing_listing)
    assert raised.value.path == str(failing_listing / "sub")
    assert "cannot list this input directory (EIO: Input/output error)" in str(raised.value)
    assert "remount" in raised.value.hint


def test_an_unlistable_input_root_is_named_not_called_empty(failing_listing):
    with pytest.raises(InputFileError, match="cannot list this input directory") as raised:
        expand_inputs([str(failing_listing / "sub")])
    assert raised.value.path == str(failing_listing / "sub")


def test_the_run_planning_and_status_see_the_error(failing_listing, tmp_path):
    from hpc_classify.driver.plan import list_input_files
    from hpc_classify.driver.status import files_of_a_rerun

    with pytest.raises(InputFileError, match="cannot list"):
        list_input_files([str(failing_listing)], str(tmp_path / "out"), "jsonl")
    # status: the inputs cannot be listed again (its counts are then the last plan's, and it says so),
    # rather than listed without sub/ and the run reported complete.
    a = failing_listing / "a.jsonl"
    plan = {"inputs": [str(failing_listing)], "files": [{"relpath": "a.jsonl", "path": str(a), "size": 14}]}
    assert files_of_a_rerun(plan).rechecked is False
