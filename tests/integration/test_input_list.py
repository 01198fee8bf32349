"""`--input-list FILE` runs exactly what the same `--input` flags run: the same files, output names, plan
and resume (io/input_list.py, cli/run_config.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from driver_support import make_corpus, output_files, read_jsonl, run_cli, summary


def _small_run(output: Path, model: Path, *inputs: str) -> list[str]:
    """run_args without its one --input: `inputs` are the input flags."""
    return [
        "run", *inputs,
        "--output", str(output),
        "--model", str(model),
        "--workers", "1",
        "--threads-per-worker", "1",
        "--device", "cpu",
    ]  # fmt: skip


def _outputs(output: Path) -> dict[str, list[str]]:
    return {
        rel: [row["id"] for row in read_jsonl(path)] for rel, path in sorted(output_files(output).items())
    }


def _corpus(tmp_path: Path) -> tuple[Path, Path]:
    """data/shards/en/ (a directory, 2 files), data/single.jsonl (a file), data/globbed/*.jsonl (a glob, 2
    files) and elsewhere/far.jsonl (named by its absolute path); returns (data, far)."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    make_corpus(data / "shards" / "en", n_files=2, docs_per_file=4, seed=1)
    make_corpus(data / "globbed", n_files=2, docs_per_file=3, seed=2)
    make_corpus(tmp_path / "one", n_files=1, docs_per_file=5, seed=3)
    shutil.move(tmp_path / "one" / "part-000.jsonl", data / "single.jsonl")
    make_corpus(elsewhere, n_files=1, docs_per_file=6, seed=4)
    far = elsewhere / "far.jsonl"
    (elsewhere / "part-000.jsonl").rename(far)
    return data, far


def test_a_list_runs_the_same_files_under_the_same_names_as_the_input_flags_and_resumes(
    tmp_path, tiny_domain_model
):
    data, far = _corpus(tmp_path)
    listed = data / "inputs.txt"
    listed.write_text(
        f"# shards kept by the dedup pass\n\n  ./shards/  \nsingle.jsonl\n{far}\n   # a glob\nglobbed/*.jsonl\n"
    )
    flags = ["--input", str(data / "shards"), "--input", str(data / "single.jsonl"), "--input", str(far)]
    flags += ["--input", str(data / "globbed" / "*.jsonl")]
    by_flags, by_list = tmp_path / "by_flags", tmp_path / "by_list"

    first = run_cli(_small_run(by_flags, tiny_domain_model, *flags))
    second = run_cli(_small_run(by_list, tiny_domain_model, "--input-list", str(listed)))

    assert first.returncode == 0, first.stderr[-3000:]
    assert second.returncode == 0, second.stderr[-3000:]
    expected = {
        "en/part-000.jsonl": [f"f000-{n}" for n in range(4)],
        "en/part-001.jsonl": [f"f001-{n}" for n in range(5)],
        "single.jsonl": [f"f000-{n}" for n in range(5)],
        "far.jsonl": [f"f000-{n}" for n in range(6)],
        "part-000.jsonl": [f"f000-{n}" for n in range(3)],
        "part-001.jsonl": [f"f001-{n}" for n in range(4)],
    }
    assert _outputs(by_list) == _outputs(by_flags) == dict(sorted(expected.items()))
    plan = (by_flags / "_plan.json").read_text()
    assert (by_list / "_plan.json").read_text() == plan
    assert summary(by_list)["files_processed"] == 6

    # The list resumes what the flags did (the same plan: no "--input differs"), and itself: nothing redone.
    for output in (by_flags, by_list):
        again = run_cli(_small_run(output, tiny_domain_model, "--input-list", str(listed)))
        assert again.returncode == 0, again.stderr[-3000:]
        assert "--input differs" not in again.stderr
        done = summary(output)
        assert (done["files_processed"], done["files_skipped"], done["files_failed"]) == (0, 6, 0)
        assert (output / "_plan.json").read_text() == plan
        assert _outputs(output) == dict(sorted(expected.items()))


def test_a_listed_path_that_is_gone_is_refused_naming_the_list_and_line(tmp_path, tiny_domain_model):
    data, _far = _corpus(tmp_path)
    listed = data / "inputs.txt"
    listed.write_text("# kept\nsingle.jsonl\n\nshards/fr\n")
    output = tmp_path / "out"

    refused = run_cli(
        _small_run(output, tiny_domain_model, "--input", str(data / "globbed"), "--input-list", str(listed))
    )

    assert refused.returncode == 2, refused.stderr[-3000:]
    assert (
        f"{listed}:4: shards/fr: no such file or directory at {data / 'shards' / 'fr'}; HINT: correct or "
        f"delete this line of the list (relative paths are read from the list's directory, {data}), then rerun"
    ) in refused.stderr
    assert not output.exists()
