"""A damaged FineWeb-Edu checkpoint through `hpc-classify run`: refused as the DeBERTa classifiers' are. A torn
config.json before any worker starts (exit 2, nothing written); weights without the regression head on the
worker, before any document is scored: every file failed with the error naming the file and the keys (exit
1), where transformers alone gave each worker its own random head and the run exited 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from driver_support import make_corpus, output_files, run_cli
from safetensors.torch import load_file, save_file


def run_fineweb(tmp_path: Path, model: Path):
    make_corpus(tmp_path / "in", n_files=2, docs_per_file=3)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {tmp_path / 'in'}\noutput: {tmp_path / 'out'}\nworkers: 1\nthreads_per_worker: 1\n"
        f"device: cpu\nautocast: false\nclassifiers:\n  - classifier: fineweb-edu\n    model: {model}\n"
    )
    return run_cli(["run", "--config", str(config)])


def test_a_torn_config_is_refused_before_any_worker_starts(tmp_path, tiny_fineweb_model):
    model = tmp_path / "model"
    shutil.copytree(tiny_fineweb_model, model)
    (model / "config.json").write_text("{not json")

    result = run_fineweb(tmp_path, model)

    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert errors[-1].startswith(
        f"hpc-classify run: error: classifier {model}: {model / 'config.json'} is not valid JSON ("
    )
    assert "JSONDecodeError" not in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_weights_without_the_head_fail_every_file_naming_the_missing_keys(tmp_path, tiny_fineweb_model):
    model = tmp_path / "model"
    shutil.copytree(tiny_fineweb_model, model)
    weights = load_file(str(model / "model.safetensors"))
    save_file(
        {k: v for k, v in weights.items() if not k.startswith("classifier.")}, model / "model.safetensors"
    )

    result = run_fineweb(tmp_path, model)

    assert result.returncode == 1, result.stdout + result.stderr
    assert output_files(tmp_path / "out") == {}  # no document scored by a random head
    failures = [json.loads(line) for line in (tmp_path / "out" / "_failures.ndjson").read_text().splitlines()]
    assert sorted(f["relpath"] for f in failures) == ["part-000.jsonl", "part-001.jsonl"]
    want = (
        f"{model / 'model.safetensors'}: weights do not match the classifier built from its config: "
        "2 missing key(s) ['classifier.bias', 'classifier.weight']"
    )
    assert all(f["error"].startswith(want) for f in failures), failures
    assert all(f["error_type"] == "CheckpointFormatError" for f in failures), failures
