"""Planning a run: inputs with sizes, skipping completed files, largest first, stale temp cleanup."""

from __future__ import annotations

import pytest

from hpc_classify.driver.plan import (
    list_input_files,
    pending_files,
    read_plan,
    remove_stale_temp_files,
    write_plan,
)
from hpc_classify.errors import ConfigError, InputFileError, OutputDirectoryError
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker


def make_inputs(root, sizes: dict[str, int]) -> None:
    for rel, size in sizes.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * size)


def mark_done(output, relpath: str) -> None:
    marker = CompletionMarker(relpath, 0, 0.0, "o", 0, 0, 0, {}, 0.0, "n", "w", "f")
    write_marker(marker_path(str(output), relpath), marker)


def test_pending_skips_marked_files_and_orders_largest_first(tmp_path):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_inputs(inputs, {"a.jsonl": 10, "b.jsonl": 30, "sub/c.jsonl": 20, "sub/d.jsonl": 30, "e.parquet": 5})
    files = list_input_files([str(inputs)], str(output), "jsonl")
    assert {f.relpath: f.size for f in files} == {
        "a.jsonl": 10, "b.jsonl": 30, "sub/c.jsonl": 20, "sub/d.jsonl": 30, "e.parquet": 5
    }  # fmt: skip
    mark_done(output, "b.jsonl")
    mark_done(output, "e.parquet")
    assert [f.relpath for f in pending_files(files, str(output))] == ["sub/d.jsonl", "sub/c.jsonl", "a.jsonl"]


def test_an_output_without_marker_is_still_pending(tmp_path):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_inputs(inputs, {"a.jsonl": 3})
    make_inputs(output, {"a.jsonl": 3})
    files = list_input_files([str(inputs)], str(output), "jsonl")
    assert [f.relpath for f in pending_files(files, str(output))] == ["a.jsonl"]


def test_plan_round_trip_and_unchanged_plan_not_rewritten(tmp_path):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_inputs(inputs, {"a.jsonl": 3, "b.jsonl": 4})
    output.mkdir()
    files = list_input_files([str(inputs)], str(output), "jsonl")
    assert write_plan(str(output), [str(inputs)], files) is True
    assert read_plan(str(output)) == {
        "inputs": [str(inputs)],
        "files": [
            {"relpath": "a.jsonl", "size": 3, "path": str(inputs / "a.jsonl")},
            {"relpath": "b.jsonl", "size": 4, "path": str(inputs / "b.jsonl")},
        ],
    }
    assert write_plan(str(output), [str(inputs)], files) is False
    assert read_plan(str(tmp_path)) is None


def test_plan_stores_absolute_specs_so_it_reads_the_same_from_any_directory(tmp_path, monkeypatch):
    make_inputs(tmp_path / "corp[1]", {"a.jsonl": 3})  # an existing path is taken literally, not as a glob
    make_inputs(tmp_path / "g", {"b.jsonl": 4})
    output = tmp_path / "out"
    output.mkdir()
    monkeypatch.chdir(tmp_path)
    specs = ["corp[1]", "g/*.jsonl"]
    write_plan(str(output), specs, list_input_files(specs, str(output), "jsonl"))
    plan = read_plan(str(output))
    assert plan["inputs"] == [str(tmp_path / "corp[1]"), str(tmp_path / "g/*.jsonl")]
    assert [f["path"] for f in plan["files"]] == [
        str(tmp_path / "corp[1]/a.jsonl"),
        str(tmp_path / "g/b.jsonl"),
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"inputs": ["/in"], "files": [{"relpa', "not valid JSON"),  # truncated
        ("[]", "is malformed"),
        ('{"inputs": ["/in"]}', "is malformed"),
        ('{"inputs": ["/in"], "files": [{"relpath": "a.jsonl"}]}', "is malformed"),
    ],
)
def test_a_bad_plan_is_an_error_naming_it_with_a_remedy_and_a_run_replaces_it(tmp_path, content, expected):
    output = tmp_path / "out"
    output.mkdir()
    (output / "_plan.json").write_text(content)
    with pytest.raises(OutputDirectoryError, match=expected) as caught:
        read_plan(str(output))
    assert str(output / "_plan.json") in str(caught.value) and "rerun the same" in caught.value.hint
    make_inputs(tmp_path / "in", {"a.jsonl": 3})
    files = list_input_files([str(tmp_path / "in")], str(output), "jsonl")
    assert write_plan(str(output), [str(tmp_path / "in")], files) is True
    assert read_plan(str(output))["files"][0]["relpath"] == "a.jsonl"


def test_an_output_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirectoryError, match="is a file"):
        read_plan(str(tmp_path / "f"))


def test_output_inside_the_input_directory_is_refused(tmp_path):
    make_inputs(tmp_path, {"a.jsonl": 3})
    with pytest.raises(ConfigError, match="inside the input directory"):
        list_input_files([str(tmp_path)], str(tmp_path / "out"), "jsonl")


def test_output_that_would_overwrite_an_input_file_is_refused(tmp_path):
    make_inputs(tmp_path, {"a.jsonl": 3})
    with pytest.raises(ConfigError, match="overwrite the input"):
        list_input_files([str(tmp_path / "a.jsonl")], str(tmp_path), "jsonl")
    list_input_files([str(tmp_path / "a.jsonl")], str(tmp_path), "parquet")  # a.parquet: no clash


@pytest.mark.parametrize(
    ("first", "output", "output_format"),
    [("x.parquet", "x.jsonl", "jsonl"), ("x.jsonl", "x.parquet", "parquet")],
)
def test_an_output_file_that_another_output_needs_as_its_directory_is_refused(
    tmp_path, first, output, output_format
):
    """`x.parquet` writes `x.jsonl`, the directory of `x.jsonl/y.jsonl`'s output: the second to be written
    failed after it was classified (which one depended on the order)."""
    inputs = tmp_path / "in"
    make_inputs(
        inputs, {first: 3, f"{output}/y.jsonl": 3, f"{output}/deeper/z.jsonl": 3, f"{output}z.jsonl": 3}
    )
    with pytest.raises(ConfigError) as refused:
        list_input_files([str(inputs)], str(tmp_path / "out"), output_format)
    assert str(refused.value).startswith(
        f"input {inputs / first} would write the output file {output!r}, which input "
        f"{inputs / output / 'deeper' / 'z.jsonl'} needs as a directory (and 1 more input(s) like these)"
    )
    (inputs / first).unlink()
    files = list_input_files([str(inputs)], str(tmp_path / "out"), output_format)  # a name's prefix: no clash
    assert sorted(f.relpath for f in files) == [
        f"{output}/deeper/z.jsonl",
        f"{output}/y.jsonl",
        f"{output}z.jsonl",
    ]


@pytest.mark.parametrize(
    ("name", "output_format"), [("failures.jsonl", "jsonl"), ("failures.parquet", "jsonl")]
)
def test_an_input_whose_output_would_be_the_failure_log_is_refused(tmp_path, name, output_format):
    """Every run starts the failure log afresh and appends to it: it would delete or corrupt that output."""
    inputs = tmp_path / "in"
    make_inputs(inputs, {name: 3, "sub/failures.jsonl": 3, "a.jsonl": 3})
    with pytest.raises(ConfigError, match=rf"{name} would be failures.jsonl at the top of --output") as error:
        list_input_files([str(inputs)], str(tmp_path / "out"), output_format)
    assert "rename that input" in str(error.value)
    (inputs / name).unlink()
    files = list_input_files([str(inputs)], str(tmp_path / "out"), output_format)  # one level down: fine
    assert sorted(f.relpath for f in files) == ["a.jsonl", "sub/failures.jsonl"]


def test_remove_stale_temp_files_only_removes_our_pattern(tmp_path):
    keep = [
        "a.jsonl",
        ".hidden",
        "_markers/a.jsonl.done.json",
        "x.tmp-1-2",
        "_jobs/1/.scheduler.json.tmp-5-aa",
    ]
    stale = [".a.jsonl.tmp-123-abcd", "_markers/.a.jsonl.done.json.tmp-9-ffff", "sub/.b.parquet.tmp-1-0"]
    make_inputs(tmp_path, dict.fromkeys(keep + stale, 1))
    assert remove_stale_temp_files(str(tmp_path)) == 3
    remaining = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert remaining == sorted(keep)


def test_an_input_whose_bookkeeping_names_would_be_too_long_is_refused_before_any_work(tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    fits = (
        "a" * 200 + ".jsonl"
    )  # its longest: the quarantine's temp file, "._<name>.quarantine.tmp-<pid>-<8 hex>"
    (inputs / fits).write_text('{"text": "x"}\n')
    assert [f.relpath for f in list_input_files([str(inputs)], str(out), "jsonl")] == [fits]
    long = "b" * 230 + ".jsonl"
    (inputs / long).write_text('{"text": "x"}\n')
    with pytest.raises(InputFileError, match="its name is too long for the files the run writes") as info:
        list_input_files([str(inputs)], str(out), "jsonl")
    assert info.value.path == str(inputs / long) and "rename the file (at most" in str(info.value)
    # The limit told is the real one: a name of that many bytes is taken.
    most = int(str(info.value).split("at most ")[1].split(" ")[0])
    (inputs / long).rename(inputs / ("c" * (most - len(".jsonl")) + ".jsonl"))
    assert len(list_input_files([str(inputs)], str(out), "jsonl")) == 2
