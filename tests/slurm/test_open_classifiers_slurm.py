"""A user's own classifier (tests/user_package: `mylab.toxicity:ToxicityClassifier`) and the domain classifier
in one pass, from one YAML config, on the real Slurm test cluster: `sbatch -N 3 slurm/classify.sbatch
--config`, `hpc-classify submit` (the configuration travels pickled) and `--cluster jobqueue`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from reference_models import sequence_classifier_probabilities
from test_launcher import FILES, ROWS, job_log, submit_classify, write_corpus

USER_CLASS = "mylab.toxicity:ToxicityClassifier"


def write_config(tmp_path: Path, corpus: Path, out: Path, domain_model: Path, toxicity_model: Path) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(
        f"input: {corpus}\noutput: {out}\ndevice: cpu\n"
        "classifiers:\n"
        f"  - classifier: domain\n    model: {domain_model}\n"
        f"  - classifier: {USER_CLASS}\n    model_dir: {toxicity_model}\n"
        "    prob_column: toxicity_prob\n    autocast: false\n"
    )
    return path


def assert_both_columns_exactly_once(corpus: Path, out: Path, toxicity_model: Path) -> list[dict]:
    for source in sorted(corpus.glob("*.jsonl")):
        rows = [json.loads(line) for line in source.read_text().splitlines()]
        written = [json.loads(line) for line in (out / source.name).read_text().splitlines()]
        assert [r["id"] for r in written] == [r["id"] for r in rows], source.name
        want = sequence_classifier_probabilities(toxicity_model, [r["text"] for r in rows])
        assert np.abs(np.array([r["toxicity_prob"] for r in written]) - want).max() <= 1e-5
        assert all(isinstance(r["domain_pred"], str) for r in written)
    found = [json.loads(p.read_text()) for p in sorted((out / "_markers").glob("*.done.json"))]
    assert len(found) == FILES and sum(m["rows_in"] for m in found) == FILES * ROWS
    assert all(set(m["label_counts"]) == {"domain_pred", "toxicity_pred"} for m in found)
    return found


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "in")


@pytest.fixture
def user_env(user_package_path: str) -> dict[str, str]:
    return {"PYTHONPATH": user_package_path}


def test_sbatch_with_a_config_runs_a_user_classifier_beside_a_built_in(
    slurm_cluster, tiny_domain_model, tiny_toxicity_model, corpus, tmp_path, user_env
) -> None:
    out = tmp_path / "out"
    config = write_config(tmp_path, corpus, out, tiny_domain_model, tiny_toxicity_model)
    job = submit_classify(slurm_cluster, tmp_path, ["--config", str(config)], env=user_env)
    assert slurm_cluster.wait_job(job, timeout=300) == "COMPLETED", job_log(tmp_path, job)
    found = assert_both_columns_exactly_once(corpus, out, tiny_toxicity_model)
    assert {m["node"] for m in found} == {"node1", "node2", "node3"}


def test_submit_and_jobqueue_take_the_same_config(
    slurm_cluster, tiny_domain_model, tiny_toxicity_model, corpus, tmp_path, user_env
) -> None:
    env = {**slurm_cluster.env, **user_env}
    commands = {
        "submitit": ["submit", "--nodes", "2", "--time", "10", "--partition", "debug", "--"],
        "jobqueue": ["run", "--cluster", "jobqueue", "--workers", "2"],
    }
    for name, command in commands.items():
        out = tmp_path / f"out-{name}"
        config = write_config(tmp_path, corpus, out, tiny_domain_model, tiny_toxicity_model)
        cmd = [sys.executable, "-m", "hpc_classify.cli.main", *command, "--config", str(config)]
        proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"
        assert_both_columns_exactly_once(corpus, out, tiny_toxicity_model)


def test_sbatch_runs_a_regressor_and_a_multi_head_classifier(
    slurm_cluster, tiny_fineweb_model, tiny_prompt_complexity_model, corpus, tmp_path
) -> None:
    out = tmp_path / "out"
    config = tmp_path / "family.yaml"
    config.write_text(
        f"input: {corpus}\noutput: {out}\ndevice: cpu\nautocast: false\n"
        "classifiers:\n"
        f"  - classifier: fineweb-edu\n    model: {tiny_fineweb_model}\n"
        f"  - classifier: prompt-task-complexity\n    model: {tiny_prompt_complexity_model}\n"
    )
    job = submit_classify(slurm_cluster, tmp_path, ["--config", str(config)])
    assert slurm_cluster.wait_job(job, timeout=300) == "COMPLETED", job_log(tmp_path, job)
    found = [json.loads(p.read_text()) for p in sorted((out / "_markers").glob("*.done.json"))]
    assert len(found) == FILES and {m["node"] for m in found} == {"node1", "node2", "node3"}
    assert all(
        set(m["label_counts"]) == {"fineweb-edu-score-int", "task_type_1", "prompt_complexity_score"}
        for m in found
    )
    for source in sorted(corpus.glob("*.jsonl")):
        rows = [json.loads(line) for line in source.read_text().splitlines()]
        written = [json.loads(line) for line in (out / source.name).read_text().splitlines()]
        assert [r["id"] for r in written] == [r["id"] for r in rows]
        assert all(
            0 <= r["fineweb-edu-score"] <= 5 and r["fineweb-edu-score-int"] in range(6) for r in written
        )
        assert all(isinstance(r["task_type_1"], str) and r["prompt_complexity_score"] >= 0 for r in written)
