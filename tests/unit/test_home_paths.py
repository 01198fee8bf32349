"""A leading `~` (or `~user`) in an --input-list entry or a YAML path value names the home directory, as the
shell makes it for the same flags: nothing expanded them before, so `~/data/a.jsonl` in a list was read as
`<list dir>/~/data/a.jsonl` (no such file) and `output: ~/out` in a YAML wrote into a directory named `~` below
the working directory."""

from __future__ import annotations

import os
import pwd

import pytest

from hpc_classify.cli.run import parse_run_argv
from hpc_classify.cli.run_config import config_from_args, load_yaml_config
from hpc_classify.driver.plan import absolute_spec
from hpc_classify.io.input_list import read_input_list


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "a.jsonl").write_text("")
    (home / "lists").mkdir()
    (home / "lists" / "l.txt").write_text("~/data/a.jsonl\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)  # neither the home nor the list's directory
    return home


def test_input_list_entries_expand_a_leading_tilde(home, tmp_path) -> None:
    listed = tmp_path / "inputs.txt"
    listed.write_text("~/data/a.jsonl\n~/data/*.jsonl\n")
    specs = read_input_list(str(listed))
    assert specs == [str(home / "data" / "a.jsonl"), str(home / "data" / "*.jsonl")]
    assert [absolute_spec(spec) for spec in specs] == specs  # what the plan records


def test_a_tilde_user_entry_is_that_users_home(tmp_path) -> None:
    user = pwd.getpwuid(os.getuid())
    listed = tmp_path / "inputs.txt"
    listed.write_text(f"~{user.pw_name}/corpus/a.jsonl\n")
    assert read_input_list(str(listed), check_entries=False) == [
        os.path.join(user.pw_dir, "corpus", "a.jsonl")
    ]


def test_yaml_path_values_expand_a_leading_tilde(home, tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        "input: [~/data/a.jsonl, rel/b.jsonl]\ninput_list: ~/lists/l.txt\noutput: ~/out\n"
        "scheduler_file: ~/sched.json\nkey_column: ~id\n"
    )
    assert load_yaml_config(str(config)) == {
        "input": [str(home / "data" / "a.jsonl"), "rel/b.jsonl"],  # a relative path stays the working dir's
        "input_list": [str(home / "lists" / "l.txt")],
        "output": str(home / "out"),
        "scheduler_file": str(home / "sched.json"),
        "key_column": "~id",  # not a path: as written
    }
    config.write_text("input_list: ~/lists/l.txt\noutput: ~/out\n")
    run = config_from_args(parse_run_argv(["--config", str(config)]))
    assert run.inputs == (str(home / "data" / "a.jsonl"),)
    assert run.output == str(home / "out")


def test_path_flags_written_with_an_equals_sign_expand_a_leading_tilde(home, tmp_path) -> None:
    """bash leaves `--output=~/out` as written (`~` expands at a word's start only): a directory named `~`."""
    (home / "data").mkdir(parents=True, exist_ok=True)
    (home / "data" / "a.jsonl").write_text('{"text": "x"}\n')
    argv = ["--input=~/data/a.jsonl", "--output=~/out", "--classifier", "domain"]
    run = config_from_args(parse_run_argv(argv))
    assert (run.inputs, run.output) == ((str(home / "data" / "a.jsonl"),), str(home / "out"))
