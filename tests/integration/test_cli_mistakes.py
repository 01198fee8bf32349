"""A new user's mistakes on the command line: each gets one line naming the problem and the remedy, the
subcommand's own usage, and nothing written into --output until the command is valid."""

from __future__ import annotations

import inspect
import subprocess

from driver_support import CLI, cli_env, make_corpus, run_args, run_cli, summary


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


def _write_parquet(path, ids: list[str]) -> None:
    import pandas as pd

    pd.DataFrame({"id": ids, "text": [f"document {i}" for i in ids]}).to_parquet(path)


def test_a_jsonl_and_a_parquet_file_of_one_name_are_refused_before_anything_is_written(
    tmp_path, tiny_domain_model
):
    # Both map to part-00.jsonl: the run used to write one over the other and report every row.
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=3)
    (tmp_path / "in" / "part-000.jsonl").rename(tmp_path / "in" / "part-00.jsonl")
    _write_parquet(tmp_path / "in" / "part-00.parquet", ["p0", "p1"])

    result = run_cli(run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model))

    assert result.returncode == 2
    assert error_lines(result) == [
        f"hpc-classify run: error: inputs {tmp_path / 'in' / 'part-00.jsonl'} and "
        f"{tmp_path / 'in' / 'part-00.parquet'} would both write the output 'part-00.jsonl'; HINT: rename one "
        "of them (each output takes its input's name with the output format's suffix), or classify them "
        "into different --output directories"
    ]
    assert not (tmp_path / "out").exists()


def test_compressed_and_plain_jsonl_of_one_name_clash_only_for_parquet_output(tmp_path, tiny_domain_model):
    import gzip

    make_corpus(tmp_path / "in", n_files=1, docs_per_file=3)
    plain = tmp_path / "in" / "part-000.jsonl"
    (tmp_path / "in" / "part-000.jsonl.gz").write_bytes(gzip.compress(plain.read_bytes()))

    result = run_cli(
        run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model, "--output-format", "parquet")
    )

    assert result.returncode == 2
    assert error_lines(result)[0].startswith(
        f"hpc-classify run: error: inputs {plain} and {plain}.gz would both write the output 'part-000.parquet';"
    )
    assert not (tmp_path / "out").exists()


def test_a_mistyped_local_model_directory_says_it_does_not_exist(tmp_path, tiny_domain_model):
    # `demo-output/tiny-model` looks like a hub id (org/name); `demo-output` being a local directory decides.
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)
    (tmp_path / "demo-output").mkdir()
    (tmp_path / "demo-output" / "tiny-domain-model").symlink_to(tiny_domain_model)
    args = run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model)
    args[args.index("--model") + 1] = "demo-output/tiny-model"

    result = subprocess.run([*CLI, *args], env=cli_env(), cwd=tmp_path, capture_output=True, text=True)

    assert result.returncode == 2
    assert error_lines(result) == [
        "hpc-classify run: error: model directory 'demo-output/tiny-model' does not exist "
        "(did you mean demo-output/tiny-domain-model?); HINT: pass an existing local checkpoint directory "
        "(demo-output/tiny-model is taken as a path, not a hub id, because demo-output is a local directory)"
    ]
    assert not (tmp_path / "out").exists()


def test_a_hub_id_missing_offline_says_both_what_it_is_not_without_library_advice(tmp_path):
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)
    home = tmp_path / "hf"
    env = cli_env(HF_HUB_OFFLINE="1", HF_HOME=str(home))
    env.pop("HF_HUB_CACHE", None)
    env.pop("HUGGINGFACE_HUB_CACHE", None)

    result = run_cli(
        [
            "run",
            "--input",
            str(tmp_path / "in"),
            "--output",
            str(tmp_path / "out"),
            "--model",
            "nvidia/no-such",
        ],
        env=env,
    )

    assert result.returncode == 2
    assert error_lines(result) == [
        "hpc-classify run: error: classifier 'nvidia/no-such' (revision main) is not available: no local "
        f"directory of that name, not in the Hugging Face cache {home / 'hub'}, and offline (HF_HUB_OFFLINE=1); "
        "HINT: on a login node with internet, run `HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier "
        f"nvidia/no-such` with the same Hugging Face cache as the compute nodes (this one: {home / 'hub'}, from "
        "HF_HUB_CACHE or HF_HOME), or pass a local directory holding the checkpoint"
    ]


def test_a_typo_in_a_yaml_classifier_entry_names_only_the_unknown_key(tmp_path, tiny_domain_model):
    from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier

    (tmp_path / "run.yaml").write_text(
        f"classifiers:\n  - classifier: domain\n    model: {tiny_domain_model}\n    filter_bye: [Sports]\n"
    )
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)

    result = run_cli(
        ["run", "--config", str(tmp_path / "run.yaml"), "--input", str(tmp_path / "in"), "--output", "o"]
    )

    assert result.returncode == 2
    valid = ", ".join(inspect.signature(DomainClassifier).parameters)
    assert error_lines(result) == [
        "hpc-classify run: error: classifier 'domain' (DomainClassifier): unknown argument 'filter_bye' "
        f"(did you mean 'filter_by'?); HINT: DomainClassifier takes {valid}"
    ]
    assert "model" in valid.split(", ")


def test_a_text_field_no_row_has_is_one_setting_error(tmp_path, tiny_domain_model):
    make_corpus(tmp_path / "in", n_files=3, docs_per_file=2)

    result = run_cli(run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model, "--text-field", "body"))

    assert result.returncode == 2
    assert error_lines(result) == [
        f"hpc-classify run: error: --text-field 'body': no row of {tmp_path / 'in' / 'part-000.jsonl'} has that "
        "field (its fields: id, text); HINT: set --text-field (text_field in a YAML config) to the field that "
        "holds the documents"
    ]
    assert not (tmp_path / "out").exists()


def test_a_kept_column_no_sampled_row_has_is_one_setting_error(tmp_path, tiny_domain_model):
    make_corpus(tmp_path / "in", n_files=2, docs_per_file=2)

    result = run_cli(run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model, "--keep-columns", "idd"))

    assert result.returncode == 2
    paths = [tmp_path / "in" / f"part-00{i}.jsonl" for i in range(2)]
    rows = sum(len(path.read_text().splitlines()) for path in paths)
    files = ", ".join(map(str, paths))
    assert error_lines(result) == [
        f"hpc-classify run: error: --keep-columns 'idd': none of the {rows} rows of {files} has that "
        "column (their columns: id, text); HINT: did you mean 'id'? fix --keep-columns (keep_columns in a "
        "YAML config), or leave the column out"
    ]
    assert not (tmp_path / "out").exists()


def test_a_mistyped_flag_gets_a_suggestion(tmp_path):
    result = run_cli(["run", "--input", str(tmp_path), "--outptu", str(tmp_path / "o"), "--text-fild=body"])

    assert result.returncode == 2
    assert error_lines(result)[-1] == (
        f"hpc-classify run: error: unrecognized arguments: --outptu {tmp_path / 'o'} --text-fild=body "
        "(--outptu: did you mean --output?; --text-fild: did you mean --text-field?)"
    )


def test_run_help_lists_every_built_in_classifier():
    from hpc_classify.classifiers.registry import CLASSIFIERS

    result = run_cli(["run", "--help"])

    assert result.returncode == 0
    flat = " ".join(result.stdout.split())
    assert f"a built-in ({', '.join(CLASSIFIERS)}; default domain)" in flat
    assert len(CLASSIFIERS) == 10


def test_a_bad_row_is_reported_once_and_reads_well(tmp_path, tiny_domain_model):
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)
    with open(tmp_path / "in" / "part-000.jsonl", "a") as f:
        f.write('{"id": "x", "text": "cut')  # a truncated last line

    result = run_cli(run_args(tmp_path / "in", tmp_path / "out", tiny_domain_model))

    assert result.returncode == 1, result.stderr[-3000:]
    message = (
        f"{tmp_path / 'in' / 'part-000.jsonl'}:3: invalid JSON (Unterminated string starting at column 21)"
    )
    assert result.stderr.count(message) == 1, result.stderr[-3000:]


def test_max_mem_gb_on_cpu_workers_is_one_setting_error_not_a_failure_per_file(tmp_path, tiny_domain_model):
    """device auto (the default) runs on the CPU where the workers have no GPU: max_mem_gb, a GPU memory
    limit, is refused once, before any file is submitted, instead of failing every file in turn."""
    make_corpus(tmp_path / "in", n_files=3, docs_per_file=2)
    config = tmp_path / "mem.yaml"
    config.write_text(
        f"input: {tmp_path / 'in'}\noutput: {tmp_path / 'out'}\nmax_retries: 0\n"
        f"classifiers:\n  - classifier: domain\n    model: {tiny_domain_model}\n    max_mem_gb: 4\n"
    )

    result = run_cli(["run", "--config", str(config), "--workers", "1", "--threads-per-worker", "1"])

    assert result.returncode == 2, result.stderr[-3000:]
    assert error_lines(result)[-1] == (
        "hpc-classify run: error: max_mem_gb=4 was given for DomainClassifier (device 'auto'), but the workers "
        "of this run have no GPU: max_mem_gb limits GPU memory; HINT: leave max_mem_gb out on CPU workers, or "
        "run on GPU workers (a GPU node; --gpus-per-node with `hpc-classify submit`)"
    )
    assert not (tmp_path / "out" / "_failures.ndjson").exists()
    assert not (tmp_path / "out" / "_markers").exists()
