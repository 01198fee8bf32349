"""The precision is part of a run's fingerprint: resuming an output directory with another precision is refused,
naming the key; the same precision resumes."""

from __future__ import annotations

import json

from driver_support import make_corpus, run_args, run_cli, summary


def test_resume_with_another_precision_is_refused_naming_the_key(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_corpus(inputs, n_files=2, docs_per_file=4)
    first = run_cli(run_args(inputs, output, tiny_domain_model, "--precision", "int8"))
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads((output / "_run.json").read_text())["details"]["classifiers"][0]["precision"] == "int8"

    refused = run_cli(run_args(inputs, output, tiny_domain_model, "--precision", "fp32"))

    assert refused.returncode == 2
    assert "classifiers.0.precision: 'int8' -> 'fp32'" in refused.stderr
    assert "--overwrite" in refused.stderr

    resumed = run_cli(run_args(inputs, output, tiny_domain_model, "--precision", "int8"))

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (summary(output)["files_processed"], summary(output)["files_skipped"]) == (0, 2)
