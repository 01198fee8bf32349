"""A new user's mistakes on the command line: each gets one line naming the problem and the remedy, the
subcommand's own usage, and nothing written into --output until the command is valid."""

from __future__ import annotations

from driver_support import make_corpus, run_args, run_cli, summary


def error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def test_missing_output_names_the_flag(tmp_path):
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)

    result = run_cli(["run", "--input", str(tmp_path / "in")])

    assert result.returncode == 2
    assert error_lines(result) == ["hpc-classify run: error: no --output given; HINT: pass --output DIR"]


def test_an_output_that_is_a_file_is_refused_in_one_line(tmp_path, tiny_domain_model):
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)
    (tmp_path / "out").write_text("not a directory")

    result = run_cli(run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model))

    assert result.returncode == 2
    assert error_lines(result) == [
        f"hpc-classify run: error: --output {tmp_path / 'out'} is a file, not a directory; "
        "HINT: give a directory path (created if missing)"
    ]


def test_a_wrong_input_writes_nothing_so_the_corrected_command_runs_with_other_settings(
    tmp_path, tiny_domain_model
):
    expected = make_corpus(tmp_path / "in", n_files=2, docs_per_file=3)
    output = tmp_path / "out"

    wrong = run_cli(run_args(tmp_path / "typo", output, tiny_domain_model))

    assert wrong.returncode == 2
    assert error_lines(wrong) == [
        f"hpc-classify run: error: {tmp_path / 'typo'}: no such file or directory; "
        "HINT: check the --input path (and quote globs)"
    ]
    assert not output.exists()

    corrected = run_cli(run_args(tmp_path / "in", output, tiny_domain_model, "--max-chars", "500"))

    assert corrected.returncode == 0, corrected.stderr[-3000:]
    assert summary(output)["files_processed"] == len(expected)


def test_a_wrong_flag_shows_the_subcommands_usage(tmp_path):
    result = run_cli(["run", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--bogus", "1"])

    assert result.returncode == 2
    assert result.stderr.startswith("usage: hpc-classify run ")
    assert result.stderr.rstrip().endswith("hpc-classify run: error: unrecognized arguments: --bogus 1")
    assert not (tmp_path / "o").exists()


def test_library_errors_do_not_reach_the_user_as_tracebacks(tmp_path):
    (tmp_path / "run.yaml").write_text(
        "classifiers: [{classifier: domain, filter_by: [Games]}]\nmax_retries: many\n"
    )

    result = run_cli(
        ["run", "--config", str(tmp_path / "run.yaml"), "--input", str(tmp_path), "--output", "o"]
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert error_lines(result) == ["hpc-classify run: error: max_retries must be an integer, not 'many'"]
