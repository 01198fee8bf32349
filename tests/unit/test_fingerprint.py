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
from hpc_classify.io.markers import CompletionMarker, write_marker


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


def test_overwrite_discards_the_old_runs_bookkeeping_and_the_outputs_its_markers_name(tmp_path):
    check_or_store_fingerprint(str(tmp_path), details(), overwrite=False)
    (tmp_path / "_markers" / "sub").mkdir(parents=True)
    marker = CompletionMarker(
        "/in/sub/b.jsonl", 1, 0.0, "/moved/sub/b.jsonl", 1, 1, 0, {}, 0.0, "n", "w", "f"
    )
    marker.quarantine_path = "/moved/sub/_b.jsonl.quarantine.jsonl"
    write_marker(str(tmp_path / "_markers" / "sub" / "b.jsonl.done.json"), marker)
    (tmp_path / "_markers" / "a.jsonl.done.json").write_text("{}")  # unreadable: the old format's name
    (tmp_path / "failures.jsonl").write_text("{}\n")  # an older version's failure log
    (tmp_path / "_failures.ndjson").write_text("{}\n")
    (tmp_path / "sub").mkdir()
    for name in ("a.jsonl", "sub/b.jsonl", "sub/_b.jsonl.quarantine.jsonl", "c.jsonl", "notes.txt"):
        (tmp_path / name).write_text("{}\n")
    new = check_or_store_fingerprint(str(tmp_path), details(max_chars=10), overwrite=True)
    assert json.loads((tmp_path / "_run.json").read_text())["fingerprint"] == new
    assert not (tmp_path / "_markers").exists() and not (tmp_path / "failures.jsonl").exists()
    assert not (tmp_path / "_failures.ndjson").exists()
    # Those the markers name are gone; a file no marker names (not provably ours) stays.
    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["_run.json", "c.jsonl", "notes.txt"]


def test_a_marker_naming_bookkeeping_or_a_directory_removes_nothing(tmp_path):
    check_or_store_fingerprint(str(tmp_path), details(), overwrite=False)
    (tmp_path / "x.jsonl").mkdir()  # a directory where an output's name is
    for relpath, named in (("a.jsonl", "/o/_run.json"), ("x.jsonl", "/o/x.jsonl"), ("b.jsonl", "/o/..")):
        marker = CompletionMarker("/in/" + relpath, 1, 0.0, named, 1, 1, 0, {}, 0.0, "n", "w", "f")
        write_marker(str(tmp_path / "_markers" / f"{relpath}.done.json"), marker)
    check_or_store_fingerprint(str(tmp_path), details(max_chars=10), overwrite=True)
    assert (tmp_path / "_run.json").exists() and (tmp_path / "x.jsonl").is_dir()


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


def _write_plan(output, *relpaths):
    files = [{"relpath": r, "size": 1, "path": f"/in/{r}"} for r in relpaths]
    (output / "_plan.json").write_text(json.dumps({"inputs": ["/in"], "files": files}))


def test_overwrite_removes_the_outputs_of_every_planned_file_a_marker_listing_missed(tmp_path):
    """The old run's plan names files whose markers a lagging listing misses (here: none written yet): their
    outputs and quarantines under the old format are removed all the same; nothing outside the output
    directory, no directory, and no name the new format gives."""
    output = tmp_path / "out"
    output.mkdir()
    check_or_store_fingerprint(str(output), details(), overwrite=False)
    (output / "_markers").mkdir()
    _write_plan(output, "a.jsonl", "sub/b.jsonl.gz", "d.jsonl", "../escape.jsonl", "notes.txt")
    (output / "sub").mkdir()
    (output / "d.jsonl").mkdir()  # a directory where an output's name is: not ours to remove
    for name in ("a.jsonl", "_a.jsonl.quarantine.jsonl", "sub/b.jsonl.gz", "a.parquet", "notes.txt"):
        (output / name).write_text("{}\n")
    (tmp_path / "escape.jsonl").write_text("{}\n")

    check_or_store_fingerprint(str(output), details(max_chars=10), overwrite=True)

    left = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["escape.jsonl", "out/_run.json", "out/a.parquet", "out/notes.txt"]
    assert (output / "d.jsonl").is_dir() and not (output / "_plan.json").exists()


@pytest.mark.parametrize("plan", [None, "not json"], ids=["missing", "unreadable"])
def test_without_a_readable_plan_the_discard_goes_by_the_markers_and_says_so(tmp_path, caplog, plan):
    check_or_store_fingerprint(str(tmp_path), details(), overwrite=False)
    marker = CompletionMarker("/in/a.jsonl", 1, 0.0, "/o/a.jsonl", 1, 1, 0, {}, 0.0, "n", "w", "f")
    write_marker(str(tmp_path / "_markers" / "a.jsonl.done.json"), marker)
    (tmp_path / "a.jsonl").write_text("{}\n")
    if plan is not None:
        (tmp_path / "_plan.json").write_text(plan)

    check_or_store_fingerprint(str(tmp_path), details(max_chars=10), overwrite=True)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["_run.json"]
    why = (
        f"no run plan {tmp_path / '_plan.json'}"
        if plan is None
        else f"the run plan {tmp_path / '_plan.json'} is not valid JSON (Expecting value: line 1 column 1 (char 0))"
    )
    assert (
        f"--overwrite: {why}: the previous run's outputs are found only by listing its markers; an output whose "
        "marker the listing misses (a shared file system's cached listing) stays"
    ) in caplog.text
