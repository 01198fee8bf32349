"""The run fingerprint stored in `<output>/_run.json`: match resumes, mismatch refuses, --overwrite discards."""

from __future__ import annotations

import json

import pytest

from hpc_classify._version import __version__
from hpc_classify.driver.fingerprint import (
    check_or_store_fingerprint,
    compute_run_fingerprint,
    describe_differences,
    fingerprint_id,
)
from hpc_classify.errors import OutputDirectoryError


def details(**classifier):
    base = {"model": "/m", "checkpoint_hash": "abc", "max_chars": 2000, "filter_by": None}
    return compute_run_fingerprint([{**base, **classifier}], output_format="jsonl")


def test_details_hold_version_format_and_classifier():
    d = details()
    assert d["package_version"] == __version__ and d["output_format"] == "jsonl"
    assert d["classifiers"][0]["checkpoint_hash"] == "abc" and d["keep_columns"] is None


def test_first_run_stores_and_same_settings_resume(tmp_path):
    fid = check_or_store_fingerprint(str(tmp_path), details(), overwrite=False)
    stored = json.loads((tmp_path / "_run.json").read_text())
    assert stored["fingerprint"] == fid == fingerprint_id(details())
    mtime = (tmp_path / "_run.json").stat().st_mtime_ns
    assert check_or_store_fingerprint(str(tmp_path), details(), overwrite=False) == fid
    assert (tmp_path / "_run.json").stat().st_mtime_ns == mtime  # a resume does not rewrite it


def test_fingerprint_is_stable_over_json_round_trip_and_key_order():
    assert fingerprint_id(details(filter_by=["A", "B"])) == fingerprint_id(
        json.loads(json.dumps(details(filter_by=("A", "B"))))
    )


def test_mismatch_is_refused_naming_the_difference(tmp_path):
    check_or_store_fingerprint(str(tmp_path), details(), overwrite=False)
    with pytest.raises(
        OutputDirectoryError, match=r"classifiers.0.checkpoint_hash: 'abc' -> 'def'.*\nHINT: .*--overwrite"
    ):
        check_or_store_fingerprint(str(tmp_path), details(checkpoint_hash="def"), overwrite=False)


def test_overwrite_discards_the_old_runs_bookkeeping_but_not_outputs(tmp_path):
    check_or_store_fingerprint(str(tmp_path), details(), overwrite=False)
    (tmp_path / "_markers").mkdir()
    (tmp_path / "_markers" / "a.jsonl.done.json").write_text("{}")
    (tmp_path / "failures.jsonl").write_text("{}\n")
    (tmp_path / "a.jsonl").write_text("{}\n")
    new = check_or_store_fingerprint(str(tmp_path), details(max_chars=10), overwrite=True)
    assert json.loads((tmp_path / "_run.json").read_text())["fingerprint"] == new
    assert not (tmp_path / "_markers").exists() and not (tmp_path / "failures.jsonl").exists()
    assert (tmp_path / "a.jsonl").exists()


def test_describe_differences_flattens_nested_keys():
    assert (
        describe_differences({"a": {"b": 1}, "c": 2}, {"a": {"b": 3}, "c": 2, "d": 4})
        == "a.b: 1 -> 3; d: None -> 4"
    )


def test_a_checkpoint_counts_as_resolved_and_its_tokenizer_files_count(
    tiny_domain_model, tmp_path, monkeypatch
):
    """`./ckpt`, `ckpt/` and the absolute path are one model; a changed tokenizer file is another."""
    import shutil

    from hpc_classify.classifiers import DomainClassifier

    shutil.copytree(tiny_domain_model, tmp_path / "ckpt")
    monkeypatch.chdir(tmp_path)

    def fingerprint(model: str) -> dict:
        return DomainClassifier(model=model, device_type="cpu").fingerprint()["model"]

    typed = [fingerprint(spelling) for spelling in ("./ckpt", "ckpt/", str(tmp_path / "ckpt"))]
    assert typed[0] == typed[1] == typed[2]
    assert typed[0]["model"] == str((tmp_path / "ckpt").resolve()) and typed[0]["revision"] is None

    config = tmp_path / "ckpt" / "tokenizer_config.json"
    settings = json.loads(config.read_text())
    config.write_text(json.dumps({**settings, "do_lower_case": not settings.get("do_lower_case", False)}))
    changed = fingerprint("ckpt")
    assert changed["tokenizer_hash"] != typed[0]["tokenizer_hash"]
    assert changed["checkpoint_hash"] == typed[0]["checkpoint_hash"]


def test_a_changed_configuration_or_local_base_configuration_is_another_model(tiny_domain_model, tmp_path):
    """Settings that keep the weights' shapes still change the outputs (layer_norm_eps; the position
    buckets from max_position_embeddings): a resume must not mix outputs of both."""
    import shutil

    from hpc_classify.classifiers import DomainClassifier

    ckpt, base = tmp_path / "ckpt", tmp_path / "ckpt-base"
    shutil.copytree(tiny_domain_model, ckpt)
    config = json.loads((ckpt / "config.json").read_text())
    shutil.copytree(config["base_model"], base)
    (ckpt / "config.json").write_text(json.dumps({**config, "base_model": str(base)}))

    def fingerprint() -> dict:
        return DomainClassifier(model=str(ckpt), device_type="cpu").fingerprint()["model"]

    def edit(path, **changes) -> None:
        path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))

    seen = [fingerprint()]
    edit(base / "config.json", layer_norm_eps=1e-3)
    seen.append(fingerprint())
    edit(ckpt / "config.json", max_position_embeddings=128)
    seen.append(fingerprint())
    assert len({entry["config_hash"] for entry in seen}) == 3
    assert len({entry["checkpoint_hash"] for entry in seen}) == 1
    assert seen[-1] == fingerprint()  # and nothing else moves it
