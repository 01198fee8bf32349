"""`--input-list`: reading the list (io/input_list.py) and merging it with --input and the YAML file
(cli/run_config.py)."""

from __future__ import annotations

import glob
import os

import pytest

from hpc_classify.cli.run import parse_run_argv
from hpc_classify.cli.run_config import config_from_args
from hpc_classify.driver.input_roots import shown_specs
from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.discovery import absolute_spec
from hpc_classify.io.input_list import read_input_list


@pytest.fixture
def data(tmp_path):
    (tmp_path / "data" / "shards").mkdir(parents=True)
    (tmp_path / "data" / "shards" / "a.jsonl").write_text("")
    (tmp_path / "data" / "single.jsonl").write_text("")
    (tmp_path / "far.jsonl").write_text("")
    return tmp_path / "data"


def _config(tmp_path, argv, yaml_text=None):
    if yaml_text is not None:
        (tmp_path / "c.yaml").write_text(yaml_text)
        argv = ["--config", str(tmp_path / "c.yaml"), *argv]
    return config_from_args(parse_run_argv(["--output", "o", *argv]))


def test_entries_are_the_absolute_specs_input_would_store_from_the_lists_own_directory(data, monkeypatch):
    far = data.parent / "far.jsonl"
    listed = data / "inputs.txt"
    listed.write_text(
        f"# kept\n\n  ./shards/ \r\nsingle.jsonl\n{far}\n\t# glob\nshards/*.jsonl\n#single.jsonl\n"
    )
    monkeypatch.chdir(data.parent)  # not the list's directory

    specs = read_input_list(str(listed))

    assert specs == [str(data / "shards"), str(data / "single.jsonl"), str(far), str(data / "shards/*.jsonl")]
    monkeypatch.chdir(data)  # the same specs as --input flags given from the list's directory
    assert specs == [absolute_spec(s) for s in ("./shards/", "single.jsonl", str(far), "shards/*.jsonl")]


@pytest.mark.parametrize(
    ("line", "what"),
    [("shards/b.jsonl", "no such file or directory"), ("shards/*.parquet", "pattern matches nothing")],
)
def test_an_entry_naming_nothing_is_refused_with_the_list_file_and_line(data, line, what):
    listed = data / "inputs.txt"
    listed.write_text(f"single.jsonl\n# a comment\n\n{line}\nshards\n")

    with pytest.raises(InputFileError) as caught:
        read_input_list(str(listed))

    assert caught.value.one_line() == (
        f"{listed}:4: {line}: {what} at {data / line}; HINT: correct or delete this line of the list "
        f"(relative paths are read from the list's directory, {data}), then rerun"
    )
    assert caught.value.exit_code == 2


def test_a_missing_empty_or_stdin_list_is_refused(data):
    with pytest.raises(InputFileError, match=r"nope\.txt: cannot read this input list \(No such file"):
        read_input_list(str(data / "nope.txt"))
    (data / "empty.txt").write_text("# nothing kept\n\n")
    with pytest.raises(InputFileError, match="this input list names no input"):
        read_input_list(str(data / "empty.txt"))
    with pytest.raises(InputFileError, match="requeued or resumed job reads its inputs again"):
        read_input_list("-")
    (data / "latin.txt").write_bytes(b"single.jsonl\ncaf\xe9.jsonl\n")
    with pytest.raises(InputFileError, match=r"latin\.txt:2: this line is not valid UTF-8"):
        read_input_list(str(data / "latin.txt"))


def test_input_lists_add_to_input_flags_and_replace_the_files_inputs(tmp_path, data):
    (data / "one.txt").write_text("single.jsonl\n")
    (data / "two.txt").write_text("shards\n")
    one, two = str(data / "one.txt"), str(data / "two.txt")
    expected = ("x", str(data / "single.jsonl"), str(data / "shards"))

    flags = _config(tmp_path, ["--input", "x", "--input-list", one, "--input-list", two])
    from_yaml = _config(tmp_path, [], f"input: x\ninput-list: [{one}, {two}]\n")
    # A command-line input replaces the file's input and input_list both: one setting, what to read.
    over = _config(tmp_path, ["--input-list", two], f"input: x\ninput_list: {one}\n")

    assert flags.inputs == from_yaml.inputs == expected
    assert over.inputs == (str(data / "shards"),)
    with pytest.raises(ConfigError, match="input_list must name files, not 3"):
        _config(tmp_path, [], "input_list: [3]\n")


def test_messages_name_five_specs_and_count_the_rest():
    assert shown_specs(["/a", "/b"]) == "/a /b"
    assert shown_specs([f"/s{i}" for i in range(7)]) == "/s0 /s1 /s2 /s3 /s4 (and 2 more)"
    assert shown_specs(["rel"]) == os.path.abspath("rel")


def test_unchecked_reading_gives_the_checked_specs_and_looks_nothing_up(data, monkeypatch):
    """A job's other ranks read the list with check_entries=False (cli/node.py): the same specs as rank 0's,
    without one metadata request per listed entry, and no failure for an entry rank 0 would refuse."""
    listed = data / "inputs.txt"
    listed.write_text("./shards/\nsingle.jsonl\n../far.jsonl\nshards/*.jsonl\ngone.jsonl\nshards/*.none\n")
    looked_up = []
    real_exists, real_iglob = os.path.exists, glob.iglob
    ours = str(data)  # os.path.exists is the whole process's: another thread's lookups are not counted
    monkeypatch.setattr(
        os.path, "exists", lambda p: str(p).startswith(ours) and looked_up.append(str(p)) or real_exists(p)
    )
    monkeypatch.setattr(glob, "iglob", lambda p, **k: looked_up.append(str(p)) or real_iglob(p, **k))

    unchecked = read_input_list(str(listed), check_entries=False)

    assert looked_up == []
    assert unchecked[-2:] == [str(data / "gone.jsonl"), str(data / "shards/*.none")]  # rank 0 refuses them
    listed.write_text("./shards/\nsingle.jsonl\n../far.jsonl\nshards/*.jsonl\n")
    monkeypatch.undo()
    assert read_input_list(str(listed), check_entries=False) == read_input_list(str(listed)) == unchecked[:-2]


def test_a_byte_order_mark_is_not_part_of_the_first_entry(data):
    listed = data / "inputs.txt"
    listed.write_bytes("single.jsonl\r\nshards\r\n".encode("utf-8-sig"))
    assert read_input_list(str(listed)) == [str(data / "single.jsonl"), str(data / "shards")]
