"""The bookkeeping an older version named `failures.jsonl` and `_<output>.quarantine.jsonl` is still read,
removed and replaced by a run of this one."""

from __future__ import annotations

import json

from hpc_classify.driver.failures import FailureLog, read_failures
from hpc_classify.driver.task import remove_earlier_quarantines


def test_an_older_versions_failure_log_is_read_until_a_run_replaces_it(tmp_path):
    (tmp_path / "failures.jsonl").write_text(json.dumps({"relpath": "old.jsonl"}) + "\n")
    assert read_failures(str(tmp_path)) == [{"relpath": "old.jsonl"}]

    log = FailureLog(str(tmp_path))
    assert not (tmp_path / "failures.jsonl").exists() and read_failures(str(tmp_path)) == []
    log.record(relpath="new.jsonl", input_path="/in/new.jsonl", attempts=2, error=OSError("gone"))
    assert [e["relpath"] for e in read_failures(str(tmp_path))] == ["new.jsonl"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_failures.ndjson"]


def test_an_older_versions_quarantine_goes_whether_the_file_has_bad_rows_now_or_not(tmp_path):
    calls = []
    for rewritten in (True, False):
        (tmp_path / "_a.jsonl.quarantine.jsonl").write_text("{}\n")
        (tmp_path / "_a.jsonl.quarantine").write_text("{}\n")
        remove_earlier_quarantines(str(tmp_path / "_a.jsonl.quarantine"), rewritten, lambda: calls.append(1))
        left = sorted(p.name for p in tmp_path.iterdir())
        assert left == (["_a.jsonl.quarantine"] if rewritten else [])
    assert len(calls) == 3  # the fence before each removal
