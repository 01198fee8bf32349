"""NeMo Curator 0.7.1's `nemo_curator.utils.file_utils` helpers, compared with what NeMo's return on small trees."""

from __future__ import annotations

import logging
import os
import warnings

import pytest

from hpc_classify.utils.file_utils import (
    expand_outdir_and_mkdir,
    filter_files_by_extension,
    get_all_files_paths_under,
    get_batched_files,
    get_remaining_files,
)


@pytest.fixture
def tree(tmp_path):
    """NeMo would list every file here: .x.jsonl, B.JSONL, _private/c.jsonl, _shard_000.jsonl, a.jsonl, sub/d.jsonl."""
    root = tmp_path / "gd"
    for rel in [".x.jsonl", "B.JSONL", "_private/c.jsonl", "_shard_000.jsonl", "a.jsonl", "sub/d.jsonl"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text('{"text": "x"}\n')
    return str(root)


def test_hidden_and_underscore_names_are_skipped_with_a_warning_naming_them(tree, caplog):
    with caplog.at_level(logging.WARNING, logger="hpc_classify.io.nemo_files"):
        paths = get_all_files_paths_under(tree)
    assert paths == [os.path.join(tree, p) for p in ["B.JSONL", "a.jsonl", os.path.join("sub", "d.jsonl")]]
    [record] = caplog.records
    assert record.getMessage() == (
        f"{tree}: 3 hidden or '_'-prefixed name(s) skipped, not listed (.x.jsonl, _private{os.sep}, "
        "_shard_000.jsonl); NeMo would list them"
    )


def test_a_runs_own_bookkeeping_is_skipped_without_a_word(tmp_path, caplog):
    """Reading a run's output directory back is the usual next step: its bookkeeping is no news."""
    out = tmp_path / "out"
    (out / "_markers").mkdir(parents=True)
    (out / "_jobs").mkdir()
    for name in ["a.jsonl", "_plan.json", "_run.json", "_summary.json", "_report.html", "_report.json"]:
        (out / name).write_text("{}\n")
    (out / "_a.jsonl.quarantine.jsonl").write_text("{}\n")
    (out / ".b.jsonl.tmp-123-abcdef").write_text("")
    (out / "_SUCCESS").write_text("")
    with caplog.at_level(logging.WARNING, logger="hpc_classify.io.nemo_files"):
        assert get_all_files_paths_under(str(out)) == [str(out / "a.jsonl")]
    assert not caplog.records
    # With keep_extensions, only what would have been kept is news (and a directory, which may hold it).
    (out / "_notes.txt").write_text("")
    (out / "_private").mkdir()
    (out / "_shard.jsonl").write_text("{}\n")
    with caplog.at_level(logging.WARNING, logger="hpc_classify.io.nemo_files"):
        assert get_all_files_paths_under(str(out), keep_extensions="jsonl") == [str(out / "a.jsonl")]
    assert caplog.messages == [
        f"{out}: 2 hidden or '_'-prefixed name(s) skipped, not listed (_private{os.sep}, _shard.jsonl); NeMo "
        "would list them"
    ]


def test_the_bookkeeping_names_are_the_ones_the_run_writes():
    from hpc_classify.cluster.job_layout import JOBS_DIR
    from hpc_classify.driver.fingerprint import RUN_FILE
    from hpc_classify.driver.lock import LOCK_FILE
    from hpc_classify.driver.piece_files import PIECES_DIRNAME
    from hpc_classify.driver.plan import PLAN_FILE
    from hpc_classify.driver.summary import SUMMARY_FILE
    from hpc_classify.io import nemo_files
    from hpc_classify.io.markers import MARKERS_DIRNAME
    from hpc_classify.io.skipped_names import QUARANTINE_SUFFIX
    from hpc_classify.report.files import REPORT_HTML, REPORT_JSON

    ours = {MARKERS_DIRNAME, PIECES_DIRNAME, JOBS_DIR, LOCK_FILE, PLAN_FILE, RUN_FILE, SUMMARY_FILE}
    ours |= {REPORT_HTML, REPORT_JSON}
    assert ours <= nemo_files.BOOKKEEPING_NAMES
    assert nemo_files.QUARANTINE_SUFFIX == QUARANTINE_SUFFIX
    from hpc_classify.driver.failures import FAILURES_FILE, LEGACY_FAILURES_FILE
    from hpc_classify.io.skipped_names import RUN_FAILURES_FILE

    assert RUN_FAILURES_FILE == LEGACY_FAILURES_FILE and FAILURES_FILE in nemo_files.BOOKKEEPING_NAMES


def test_nothing_skipped_no_warning(tree, caplog):
    with caplog.at_level(logging.WARNING, logger="hpc_classify.io.nemo_files"):
        assert get_all_files_paths_under(os.path.join(tree, "sub")) == [os.path.join(tree, "sub", "d.jsonl")]
    assert not caplog.records


def test_keep_extensions_is_case_sensitive_as_nemos_and_warns_when_it_leaves_files_out(tree):
    with pytest.warns(
        UserWarning, match=r"Skipped 1 of 3 file\(s\) not ending with \.jsonl \(case-sensitive\)"
    ):
        paths = get_all_files_paths_under(tree, keep_extensions="jsonl")
    assert paths == [os.path.join(tree, "a.jsonl"), os.path.join(tree, "sub", "d.jsonl")]
    assert get_all_files_paths_under(tree, keep_extensions=".JSONL") == [os.path.join(tree, "B.JSONL")]


def test_without_recursion_only_the_top_level_files(tree):
    assert get_all_files_paths_under(tree, recurse_subdirectories=False) == [
        os.path.join(tree, "B.JSONL"),
        os.path.join(tree, "a.jsonl"),
    ]


@pytest.fixture
def resume(tmp_path):
    """An input directory of 4 shards and an output directory where 2 are done (one under another type)."""
    inp, out = tmp_path / "in", tmp_path / "out"
    (inp / "nested").mkdir(parents=True)
    out.mkdir()
    for name in ["s0.jsonl", "s1.jsonl", "s2.jsonl", "s3.jsonl", "notes.txt", "nested/s9.jsonl"]:
        (inp / name).write_text("{}\n")
    (out / "s1.jsonl").write_text("{}\n")
    (out / "s3.parquet").write_text("")
    (out / ".s2.jsonl.tmp-123-abcd").write_text("")  # a stopped write's temp file: not an output
    return str(inp), str(out)


def test_get_remaining_files_as_nemos(resume):
    inp, out = resume
    assert get_remaining_files(inp, out, "jsonl") == [
        os.path.join(inp, n) for n in ["s0.jsonl", "s2.jsonl", "s3.jsonl"]
    ]
    assert get_remaining_files(inp, out, "jsonl", "parquet") == [
        os.path.join(inp, n) for n in ["s0.jsonl", "s2.jsonl"]
    ]
    assert get_remaining_files(inp, out, "jsonl", num_files=3) == [
        os.path.join(inp, "s0.jsonl")
    ]  # 3 - 2 outputs
    assert get_remaining_files(inp, out, "jsonl", num_files=1) == []
    assert get_remaining_files(inp, out, "pickle") == [inp]
    fresh = os.path.join(out, "new", "deeper")
    assert len(get_remaining_files(inp, fresh, "jsonl")) == 4 and os.path.isdir(fresh)
    with pytest.raises(ValueError, match="num_files must be a whole number >= -1"):
        get_remaining_files(inp, out, "jsonl", num_files=1.5)


def test_get_batched_files_in_batches_of_the_remaining_ones(resume):
    inp, out = resume
    batches = get_batched_files(inp, out, "jsonl", batch_size=2)
    assert list(batches) == [
        [os.path.join(inp, "s0.jsonl"), os.path.join(inp, "s2.jsonl")],
        [os.path.join(inp, "s3.jsonl")],
    ]
    with pytest.raises(ValueError, match="batch_size must be a whole number of files >= 1, not 0"):
        get_batched_files(inp, out, "jsonl", batch_size=0)


def test_expand_outdir_and_mkdir_and_filter_files_by_extension(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert expand_outdir_and_mkdir("a/b") == str(tmp_path / "a" / "b") and (tmp_path / "a" / "b").is_dir()
    assert expand_outdir_and_mkdir(str(tmp_path / "a")) == str(tmp_path / "a")
    files = ["x.jsonl", "y.parquet", "z.JSONL", "w.jsonl.gz"]
    assert filter_files_by_extension(files, ["jsonl", ".jsonl.gz"]) == ["x.jsonl", "w.jsonl.gz"]  # warns
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert filter_files_by_extension(["x.jsonl"], "jsonl") == ["x.jsonl"]
