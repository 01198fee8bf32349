"""Files left neither done nor failed by a run that nothing stopped: named, with what each lacks, and the
run stops as interrupted (exit 3), never "all files done"."""

from __future__ import annotations

import logging

from fake_markers import marker_of

from hpc_classify import exit_codes
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.summary import RunStats
from hpc_classify.driver.unfinished import check_all_accounted_for
from hpc_classify.io.markers import marker_path, write_marker


def planned(tmp_path, name: str) -> PlannedFile:
    path = tmp_path / name
    path.write_text('{"text": "a"}\n')
    return PlannedFile(str(path), name, path.stat().st_size, path.stat().st_mtime)


def test_a_file_left_over_is_named_and_the_run_is_interrupted(tmp_path, caplog):
    out = str(tmp_path / "out")
    done, failed, left = (planned(tmp_path, n) for n in ("done.jsonl", "failed.jsonl", "left.jsonl"))
    write_marker(marker_path(out, done.relpath), marker_of(done))
    stats = RunStats(files_planned=3, files_processed=1, files_failed=1, failed=["failed.jsonl"])
    with caplog.at_level(logging.ERROR):
        check_all_accounted_for(stats, [done, failed, left], out)
    assert stats.stop_exit_code == exit_codes.INTERRUPTED
    assert stats.stop_reason == (
        "1 file(s) left neither done nor failed, though nothing stopped the run: left.jsonl; "
        "rerun to finish them"
    )
    assert "left.jsonl was neither finished nor failed by this run: no completion marker and no pieces" in (
        caplog.text
    )
    assert "done.jsonl was" not in caplog.text and "failed.jsonl was" not in caplog.text


def test_a_run_with_every_file_accounted_for_is_left_alone(tmp_path):
    stats = RunStats(files_planned=2, files_skipped=1, files_processed=1)
    check_all_accounted_for(stats, [planned(tmp_path, "a.jsonl")], str(tmp_path / "out"))
    assert (stats.stop_exit_code, stats.stop_reason) == (None, None)
