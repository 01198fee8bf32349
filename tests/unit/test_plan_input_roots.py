"""Another --input root over files the stored plan names: refused before anything is written
(driver/input_roots.py), so no output is written again under a new name and no marker is taken for
another file."""

from __future__ import annotations

import os

import pytest

from hpc_classify.driver.plan import list_input_files, write_plan
from hpc_classify.errors import ConfigError


def _nest(root) -> None:
    (root / "en").mkdir(parents=True)
    (root / "top.jsonl").write_text('{"text": "t"}\n')
    (root / "en" / "shard-000.jsonl").write_text('{"text": "a"}\n')
    (root / "en" / "shard-001.jsonl").write_text('{"text": "b"}\n')


def _plan(inputs: list[str], out: str) -> None:
    write_plan(out, inputs, list_input_files(inputs, out, "jsonl"))


@pytest.mark.parametrize(
    ("first", "second", "old", "new"),
    [("nest", "nest/en", "en/shard-000.jsonl", "shard-000.jsonl"),
     ("nest/en", "nest", "shard-000.jsonl", "en/shard-000.jsonl")],
    ids=["narrowed", "widened"],
)  # fmt: skip
def test_another_root_over_planned_files_is_refused_naming_both_roots_a_file_and_the_remedy(
    tmp_path, first, second, old, new
):
    _nest(tmp_path / "nest")
    out = tmp_path / "out"
    out.mkdir()
    _plan([str(tmp_path / first)], str(out))
    plan_before = (out / "_plan.json").read_text()

    with pytest.raises(ConfigError) as caught:
        list_input_files([str(tmp_path / second)], str(out), "jsonl")

    message = str(caught.value)
    assert "2 file(s)" in message
    assert f"--input {tmp_path / second} " in message
    assert f"(--input {tmp_path / first})" in message
    assert (
        f"{tmp_path / 'nest' / 'en' / 'shard-000.jsonl'} is {old} in that run's plan, now it would be {new}"
        in (message)
    )
    assert "give the original --input" in caught.value.hint and "a new --output" in caught.value.hint
    assert (out / "_plan.json").read_text() == plan_before  # nothing written


def test_the_same_root_through_a_link_a_moved_corpus_and_added_inputs_are_no_rename(tmp_path):
    _nest(tmp_path / "nest")
    out = tmp_path / "out"
    out.mkdir()
    _plan([str(tmp_path / "nest")], str(out))
    os.symlink(tmp_path / "nest", tmp_path / "link")
    # The same files through a link: the same relpaths, so nothing to refuse.
    assert {f.relpath for f in list_input_files([str(tmp_path / "link")], str(out), "jsonl")} == {
        "top.jsonl",
        "en/shard-000.jsonl",
        "en/shard-001.jsonl",
    }
    # Another directory added beside the planned one, and a nested spec already under it: relpaths kept.
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "x.jsonl").write_text('{"text": "x"}\n')
    listed = list_input_files(
        [str(tmp_path / "nest"), str(tmp_path / "nest" / "en"), str(tmp_path / "more")], str(out), "jsonl"
    )
    assert {f.relpath for f in listed} == {"top.jsonl", "en/shard-000.jsonl", "en/shard-001.jsonl", "x.jsonl"}
    # The corpus moved: other paths under the same relpaths.
    os.rename(tmp_path / "nest", tmp_path / "moved")
    moved = list_input_files([str(tmp_path / "moved")], str(out), "jsonl")
    assert {f.relpath for f in moved} == {"top.jsonl", "en/shard-000.jsonl", "en/shard-001.jsonl"}
