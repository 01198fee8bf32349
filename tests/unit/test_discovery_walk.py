"""Walking input directories: a directory that cannot be listed is an error naming it, never a silent skip."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mounts import bind_mount, bound_by_permissions

from hpc_classify.errors import InputFileError
from hpc_classify.io.discovery import expand_inputs
from hpc_classify.io.nemo_files import get_all_files_paths_under

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
from hpc_classify.io.discovery import expand_inputs
from hpc_classify.io.nemo_files import get_all_files_paths_under
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


def _list_every_way_without(unreadable: Path, root: Path) -> dict:
    """_LIST_EVERY_WAY's results for `root`, run by a process that permission bits bind (root included),
    with `unreadable` at mode 000 (made listable again afterwards, for pytest's clean-up)."""
    unreadable.chmod(0)
    try:
        prefix = bound_by_permissions(unreadable)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
        child = subprocess.run(
            [*prefix, sys.executable, "-c", _LIST_EVERY_WAY, str(root)],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    finally:
        unreadable.chmod(0o755)
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])


def test_a_directory_that_cannot_be_listed_is_an_error_for_every_caller(tmp_path):
    """For real: a mode-000 subdirectory, listed by a process that permission bits bind (root included)."""
    _touch(tmp_path / "corpus", "a.jsonl", "locked/b.jsonl")
    locked = tmp_path / "corpus" / "locked"
    found = _list_every_way_without(locked, tmp_path / "corpus")
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


def test_lost_and_found_at_a_volume_root_is_skipped_not_an_error(tmp_path):
    """fsck's lost+found (mode 0700, root's) sits at the root of every ext4 volume: a corpus on a volume of its
    own is read, for real, by a process that cannot list it."""
    _touch(tmp_path / "volume", "a.jsonl", "lost+found/#1234.jsonl")
    lost = tmp_path / "volume" / "lost+found"
    # Mode 000: as unreadable to this process as root's 0700 is to a user.
    found = _list_every_way_without(lost, tmp_path / "volume")
    assert found["expand_inputs"] == ["a.jsonl"]
    assert found["get_all_files_paths_under"] == [str(tmp_path / "volume" / "a.jsonl")]
    assert found["read_json"] == ["a"]


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
    rerun = files_of_a_rerun(plan)
    assert rerun.rechecked is False
    # status says why, with the error a rerun would stop on.
    assert rerun.not_rechecked_because.startswith(f"out of reach: {failing_listing / 'sub'}: cannot list")


# Directory links: followed by the run's listing (a corpus assembled from links), but a directory is read
# once: a loop, or one directory reached by two paths, is an error naming the paths, not duplicated outputs.


@pytest.mark.parametrize(
    "target", ["..", ".", "ROOT", "../../.."], ids=["parent", "itself", "absolute", "above-the-input"]
)
def test_a_link_loop_is_an_error_naming_the_link(tmp_path, target):
    corpus = tmp_path / "corpus"
    _touch(corpus, "a.jsonl", "sub/b.jsonl")
    link = corpus / "sub" / "loop"
    link.symlink_to(str(corpus) if target == "ROOT" else target, target_is_directory=True)
    for listing in (
        lambda: expand_inputs([str(corpus)]),
        lambda: get_all_files_paths_under(str(corpus), followlinks=True),
    ):
        with pytest.raises(InputFileError, match="a directory loop: this symbolic link leads to") as raised:
            listing()
        assert raised.value.path == str(link)
        assert "remove or retarget the link" in raised.value.hint


def test_the_review_loop_lists_each_file_once_or_fails_never_forty_times(tmp_path):
    """The reviewer's layout: c/sub -> .. made every file appear under ~40 relpaths."""
    _touch(tmp_path / "loop" / "c", "a.jsonl")
    (tmp_path / "loop" / "c" / "sub").symlink_to("..", target_is_directory=True)
    with pytest.raises(InputFileError, match="directory loop"):
        expand_inputs([str(tmp_path / "loop" / "c")])


def test_a_directory_linked_twice_is_an_error_naming_both_paths(tmp_path):
    _touch(tmp_path / "shared", "x.jsonl")
    corpus = tmp_path / "corpus"
    _touch(corpus, "a.jsonl")
    (corpus / "one").symlink_to(tmp_path / "shared", target_is_directory=True)
    (corpus / "two").symlink_to(tmp_path / "shared", target_is_directory=True)
    with pytest.raises(InputFileError) as raised:
        expand_inputs([str(corpus)])
    assert raised.value.path == str(corpus / "two")
    assert raised.value.reason == (
        f"the same directory as {corpus / 'one'}, reached again through the symbolic links "
        f"{corpus / 'one'}, {corpus / 'two'}: its files would be classified and written twice"
    )
    assert "remove one of the links" in raised.value.hint
    with pytest.raises(InputFileError, match="the same directory as"):
        get_all_files_paths_under(str(corpus), followlinks=True)


def test_a_real_directory_also_linked_is_an_error(tmp_path):
    corpus = tmp_path / "corpus"
    _touch(corpus, "real/x.jsonl")
    (corpus / "latest").symlink_to("real", target_is_directory=True)
    with pytest.raises(InputFileError, match=r"the same directory as .*latest, reached again"):
        expand_inputs([str(corpus)])


def test_links_reaching_each_directory_once_are_followed(tmp_path):
    _touch(tmp_path / "store", "p1/x.jsonl", "p2/y.jsonl")
    corpus = tmp_path / "corpus"
    _touch(corpus, "a.jsonl")
    (corpus / "p1").symlink_to(tmp_path / "store" / "p1", target_is_directory=True)
    (corpus / "nested").mkdir()
    (corpus / "nested" / "p2").symlink_to(tmp_path / "store" / "p2", target_is_directory=True)
    assert [f.relpath for f in expand_inputs([str(corpus)])] == ["a.jsonl", "nested/p2/y.jsonl", "p1/x.jsonl"]


def test_get_all_files_paths_under_does_not_enter_links_by_default_as_nemo(tmp_path):
    corpus = tmp_path / "corpus"
    _touch(corpus, "a.jsonl", "real/x.jsonl")
    (corpus / "loop").symlink_to(".", target_is_directory=True)
    (corpus / "latest").symlink_to("real", target_is_directory=True)
    assert get_all_files_paths_under(str(corpus)) == [
        str(corpus / "a.jsonl"),
        str(corpus / "real" / "x.jsonl"),
    ]


def test_a_bind_mount_loop_is_found_by_the_directory_identity(tmp_path):
    """No link to see: the second visit of the same (st_dev, st_ino) names the loop, links followed or not."""
    corpus = tmp_path / "corpus"
    _touch(corpus, "a.jsonl")
    with bind_mount(corpus, corpus / "again"):
        for listing in (lambda: expand_inputs([str(corpus)]), lambda: get_all_files_paths_under(str(corpus))):
            with pytest.raises(InputFileError) as raised:
                listing()
            assert raised.value.path == str(corpus / "again")
            assert raised.value.reason == (
                f"a directory loop: this is {corpus} again, reached through no link (a bind mount?)"
            )


def test_a_link_to_a_file_beside_it_is_an_error_naming_both(tmp_path):
    """`latest.jsonl -> v3.jsonl` would classify v3's documents twice, under two outputs."""
    _touch(tmp_path / "corpus", "v3.jsonl", "other.jsonl")
    (tmp_path / "corpus" / "latest.jsonl").symlink_to("v3.jsonl")
    with pytest.raises(InputFileError) as raised:
        expand_inputs([str(tmp_path / "corpus")])
    message = str(raised.value)
    assert (
        str(tmp_path / "corpus" / "latest.jsonl") in message
        and str(tmp_path / "corpus" / "v3.jsonl") in message
    )
    assert "classified and written twice" in message and "remove the extra link" in raised.value.hint


def test_a_hard_link_is_the_same_file(tmp_path):
    _touch(tmp_path / "corpus", "a.jsonl")
    os.link(tmp_path / "corpus" / "a.jsonl", tmp_path / "corpus" / "b.jsonl")
    with pytest.raises(InputFileError, match="same file as .*a.jsonl, reached again through a hard link"):
        expand_inputs([str(tmp_path / "corpus")])


def test_one_file_through_two_input_directories_is_an_error(tmp_path):
    """Two inputs, a directory and a link to it: each walk is right alone, together they list its files twice."""
    _touch(tmp_path / "corpus", "a.jsonl")
    (tmp_path / "alias").symlink_to("corpus")
    with pytest.raises(InputFileError, match="classified and written twice"):
        expand_inputs([str(tmp_path / "corpus"), str(tmp_path / "alias")])
    # The same path named twice stays one input.
    assert [f.relpath for f in expand_inputs([str(tmp_path / "corpus"), str(tmp_path / "corpus")])] == [
        "a.jsonl"
    ]


def test_a_link_up_to_an_ancestor_through_a_hidden_directory_is_not_a_loop(tmp_path):
    """The walk never enters hidden directories, so `ref -> x` from x/.stage/corpus never comes back: x's
    visible files are listed once."""
    _touch(tmp_path / "x", "top.jsonl", ".stage/corpus/a.jsonl")
    corpus = tmp_path / "x" / ".stage" / "corpus"
    (corpus / "ref").symlink_to(tmp_path / "x")
    assert [f.relpath for f in expand_inputs([str(corpus)])] == ["a.jsonl", "ref/top.jsonl"]


def test_a_name_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    """A Latin-1 `café.jsonl`: the plan and markers (JSON) cannot hold its name; it was a traceback."""
    _touch(tmp_path / "corpus", "ok.jsonl")
    latin1 = os.path.join(os.fsencode(tmp_path / "corpus"), b"caf\xe9.jsonl")
    with open(latin1, "wb") as f:
        f.write(b'{"text": "a"}\n')
    with pytest.raises(InputFileError) as raised:
        expand_inputs([str(tmp_path / "corpus")])
    assert str(raised.value).startswith(
        f"{tmp_path / 'corpus'}/caf\\xe9.jsonl: this input's name is not valid UTF-8"
    )
    assert "convmv" in raised.value.hint


def test_compressed_json_files_are_inputs_and_other_files_are_said_to_be_left_out(tmp_path, caplog):
    _touch(tmp_path / "corpus", "a.jsonl", "README.md", "sub/b.ndjson", "sub/c.txt", "sub/d.csv")
    import gzip

    import zstandard

    from hpc_classify.io.readers import read_documents

    line = b'{"text": "compressed"}\n'
    (tmp_path / "corpus" / "e.json.gz").write_bytes(gzip.compress(line))
    (tmp_path / "corpus" / "f.json.zst").write_bytes(zstandard.ZstdCompressor().compress(line))
    with caplog.at_level("WARNING", logger="hpc_classify.io.discovery"):
        found = expand_inputs([str(tmp_path / "corpus")])
    assert [f.relpath for f in found] == ["a.jsonl", "e.json.gz", "f.json.zst"]
    assert caplog.messages == [
        f"{tmp_path / 'corpus'}: 4 file(s) without a document suffix left out (README.md, sub/b.ndjson, "
        "sub/c.txt, ...); supported files end with .jsonl.gz, .json.gz, .jsonl.zst, .json.zst, .jsonl.bz2, "
        ".json.bz2, .jsonl.xz, .json.xz, .jsonl, .json, .parquet"
    ]
    assert [read_documents(f.path).frame["text"].tolist() for f in found[1:]] == [["compressed"]] * 2


def test_a_file_under_two_inputs_keeps_one_relpath_whatever_their_order(tmp_path):
    """`--input d --input d/sub` and the reverse: the output (and marker) names must not depend on the order,
    else a rerun with the flags reordered would classify the file again under another name."""
    _touch(tmp_path / "d", "a.jsonl", "sub/x.jsonl")
    d, sub = str(tmp_path / "d"), str(tmp_path / "d" / "sub")
    forward = [(f.path, f.relpath) for f in expand_inputs([d, sub])]
    assert forward == [
        (str(tmp_path / "d" / "a.jsonl"), "a.jsonl"),
        (str(tmp_path / "d/sub/x.jsonl"), "sub/x.jsonl"),
    ]
    assert [(f.path, f.relpath) for f in expand_inputs([sub, d])] == forward
    glob_first = [(f.path, f.relpath) for f in expand_inputs([str(tmp_path / "d/sub/*.jsonl"), d])]
    assert glob_first == forward


def test_a_resumed_run_keeps_the_relpath_its_plan_gave_a_file_under_two_specs(tmp_path):
    """A run planned `d/sub/x.jsonl` as `x.jsonl` (an earlier version let the first of `--input d/sub --input d`
    name it): its rerun keeps that name, where the longer one would classify the file again beside it."""
    from hpc_classify.driver.plan import list_input_files, write_plan

    _touch(tmp_path / "d", "a.jsonl", "sub/x.jsonl")
    d, sub, out = str(tmp_path / "d"), str(tmp_path / "d" / "sub"), str(tmp_path / "out")
    x = str(tmp_path / "d" / "sub" / "x.jsonl")
    assert dict((f.path, f.relpath) for f in expand_inputs([sub, d], {x: "x.jsonl"}))[x] == "x.jsonl"
    assert dict((f.path, f.relpath) for f in expand_inputs([d, sub], {x: "x.jsonl"}))[x] == "x.jsonl"
    assert dict((f.path, f.relpath) for f in expand_inputs([sub, d]))[x] == "sub/x.jsonl"
    os.makedirs(out)
    planned = list_input_files([sub, d], out, "jsonl")
    renamed = [f if f.path != x else type(f)(f.path, "x.jsonl", f.size, f.mtime) for f in planned]
    write_plan(out, [sub, d], renamed)
    assert {f.relpath for f in list_input_files([sub, d], out, "jsonl")} == {"a.jsonl", "x.jsonl"}


def test_a_runs_failures_list_is_no_shard_of_its_output_directory(tmp_path, caplog):
    """failures.jsonl (not "_"-named: users read it) was listed as a shard when an output directory was given
    as an input later: where `_markers/` says the directory is a run's output, it is left out, said."""
    out = tmp_path / "out"
    _touch(out, "a.jsonl", "failures.jsonl", "_markers/a.jsonl.done.json", "_a.jsonl.quarantine.jsonl")
    _touch(out, "sub/b.jsonl", "sub/failures.jsonl")  # no _markers/ beside it: a user's shard
    _touch(tmp_path / "runs", "r1/x.jsonl", "r1/failures.jsonl", "r1/_markers/x.jsonl.done.json")
    with caplog.at_level("WARNING", logger="hpc_classify.io.discovery"):
        found = expand_inputs([str(out), str(tmp_path / "runs")])
        globbed = expand_inputs([str(out / "*.jsonl")])
    assert [f.relpath for f in found] == ["a.jsonl", "sub/b.jsonl", "sub/failures.jsonl", "r1/x.jsonl"]
    assert [f.relpath for f in globbed] == ["a.jsonl"]
    said = [m for m in caplog.messages if "failures" in m]
    assert said == [
        f"{where}: 1 run failures list(s) left out ({name}): the failures.jsonl an hpc_classify run writes "
        "beside its _markers/ directory, not documents; to read one as documents, give it by its own path"
        for where, name in (
            (out, "failures.jsonl"),
            (tmp_path / "runs", "r1/failures.jsonl"),
            (out / "*.jsonl", out / "failures.jsonl"),
        )
    ]
    assert not any("hidden" in m and "failures" in m for m in caplog.messages)
    by_path = expand_inputs([str(out / "failures.jsonl")])  # its own path: read as asked
    assert [f.relpath for f in by_path] == ["failures.jsonl"]
    caplog.clear()
    with caplog.at_level("WARNING", logger="hpc_classify.io.nemo_files"):
        listed = get_all_files_paths_under(str(out))
        with pytest.warns(UserWarning, match="Skipped 3 of 3"):  # NeMo's, for keep_extensions
            assert get_all_files_paths_under(str(out), keep_extensions="parquet") == []
    assert [os.path.relpath(p, out) for p in listed] == [
        "a.jsonl",
        os.path.join("sub", "b.jsonl"),
        os.path.join("sub", "failures.jsonl"),
    ]
    assert caplog.messages[0].startswith(f"{out}: 1 run failures list(s) left out (failures.jsonl)")
    assert caplog.messages[0].endswith(
        "not documents (NeMo would list them); to read one as documents, give it by its own path"
    )
