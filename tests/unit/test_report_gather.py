"""The report's numbers from hand-written bookkeeping: markers of older versions (no start time, no kinds of
bad rows, no times at all) stay readable, worker timelines keep idle gaps and count busy time exactly, and a
column that only later markers have is aligned with its shards."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from mounts import freezable_directory

from hpc_classify.driver.plan import list_input_files, write_plan
from hpc_classify.driver.status import compute_status
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker
from hpc_classify.report.gather import UNKNOWN_KIND, collect_report
from hpc_classify.report.render import render_page
from hpc_classify.report.timeline import Interval, worker_timeline


def marker(relpath: str, counts: dict, **fields) -> CompletionMarker:
    rows = sum(next(iter(counts.values())).values())
    values = {
        "input_path": f"/in/{relpath}",
        "input_size": 10,
        "input_mtime": 0.0,
        "output_path": f"/out/{relpath}",
        "rows_in": rows,
        "rows_out": rows,
        "rows_bad": 0,
        "label_counts": counts,
        "seconds": 4.0,
        "node": "n1",
        "worker": "w0",
        "fingerprint": "f",
    }
    return CompletionMarker(**{**values, **fields})


def write_run(output, markers: dict[str, CompletionMarker], planned: list[str] | None = None) -> None:
    """The bookkeeping of a run over `planned` (default: the markers' files), and the inputs the markers
    were made from, unchanged (next to the output: the report, like `status`, counts a marker only then)."""
    output.mkdir(parents=True, exist_ok=True)
    inputs = output.parent / "in"
    plan = {"inputs": [str(inputs)], "files": [{"relpath": rel, "size": 10} for rel in planned or markers]}
    (output / "_plan.json").write_text(json.dumps(plan))
    for relpath, m in markers.items():
        source = inputs / relpath
        source.parent.mkdir(parents=True, exist_ok=True)
        source.write_bytes(b"x" * m.input_size)
        os.utime(source, (m.input_mtime, m.input_mtime))
        write_marker(marker_path(str(output), relpath), dataclasses.replace(m, input_path=str(source)))
        write_output(output, relpath)


def write_output(output, relpath: str) -> None:
    """A done file's output (a marker without one counts as remaining: driver/lost_outputs.py)."""
    (output / relpath).parent.mkdir(parents=True, exist_ok=True)
    (output / relpath).write_text("")


def test_older_markers_are_read_with_what_they_have(tmp_path):
    output = tmp_path / "out"
    write_run(
        output,
        {
            # before start times and kinds of bad rows were recorded
            "a.jsonl": marker(
                "a.jsonl", {"c": {"x": 3}}, rows_bad=2, finished_at="2026-01-01T00:00:10+00:00"
            ),
            "b.jsonl": marker("b.jsonl", {"c": {"x": 1, "y": 1}}),  # no times at all
            "c.jsonl": marker(
                "c.jsonl",
                {"c": {"y": 4}},
                rows_bad=1,
                bad_rows_by_kind={"invalid JSON": 1},
                started_at="2026-01-01T00:00:10+00:00",
                finished_at="2026-01-01T00:00:12+00:00",
            ),
        },
    )

    report = collect_report(str(output))

    assert report["files"]["without_times"] == 1
    assert report["quarantine"]["by_kind"] == {UNKNOWN_KIND: 2, "invalid JSON": 1}
    assert report["labels"] == {"c": {"x": 4, "y": 5}}
    # a.jsonl ran from 00:00:06 (finished_at - seconds) to 00:00:10, c.jsonl from 00:00:10 to 00:00:12
    assert report["timeline"] == [
        {"worker": "n1/w0", "files": 2, "busy_seconds": 6.0, "segments": [[0.0, 6.0]]}
    ]
    series = report["throughput"]
    assert sum(series["documents_per_second"]) * series["bin_seconds"] == pytest.approx(3 + 4)


def test_a_column_only_later_markers_have_is_aligned_with_its_shards(tmp_path):
    output = tmp_path / "out"
    write_run(
        output,
        {
            "a.jsonl": marker("a.jsonl", {"c": {"x": 5, "y": 5}}),
            "b.jsonl": marker("b.jsonl", {"c": {"x": 5, "y": 5}, "d": {"p": 10}}),
            "c.jsonl": marker("c.jsonl", {"c": {"x": 10}, "d": {"p": 2, "q": 8}}),
        },
    )

    ranking = collect_report(str(output))["drift"]["ranking"]

    # By hand (base 2): b.jsonl's "d" (1, 0) against the corpus's (0.6, 0.4): divergence 0.2365, distance
    # 0.4863; c.jsonl's "c" (1, 0) against (2/3, 1/3): 0.1908, 0.4368 (its "d", 0.1245, 0.3528, is smaller).
    by_shard = {entry["relpath"]: entry for entry in ranking}
    assert [entry["relpath"] for entry in ranking] == ["b.jsonl", "c.jsonl", "a.jsonl"]
    assert (by_shard["b.jsonl"]["column"], by_shard["b.jsonl"]["top_value"]) == ("d", "p")
    assert by_shard["b.jsonl"]["distance"] == pytest.approx(0.4863, abs=1e-4)
    assert (by_shard["c.jsonl"]["column"], by_shard["c.jsonl"]["top_value"]) == ("c", "x")
    assert by_shard["c.jsonl"]["distance"] == pytest.approx(0.4368, abs=1e-4)
    assert by_shard["a.jsonl"]["column"] == "c"  # it has no "d" rows: its drift is over "c" alone


def test_timeline_keeps_idle_gaps_and_counts_overlaps_once():
    intervals = [
        Interval("n/w", 0.0, 10.0, 5),
        Interval("n/w", 5.0, 12.0, 5),  # overlaps the first (two tasks in flight)
        Interval("n/w", 100.0, 110.0, 5),  # after an idle gap
        Interval("n/v", 0.0, 200.0, 5),
    ]

    timeline = {entry["worker"]: entry for entry in worker_timeline(intervals)}

    assert timeline["n/w"]["segments"] == [[0.0, 12.0], [100.0, 110.0]]
    assert timeline["n/w"]["busy_seconds"] == 22.0 and timeline["n/w"]["files"] == 3
    assert timeline["n/v"]["segments"] == [[0.0, 200.0]]


def test_the_report_counts_files_as_status_does(tmp_path):
    """Markers of changed inputs, of inputs gone and of files no longer planned are not done files, and a
    planned input deleted before it was classified is not remaining (a rerun does not list it): the
    report's counts and sums are those of `hpc-classify status` on the same directory."""
    output = tmp_path / "out"
    counts = {"c": {"x": 2}}
    markers = {
        name: marker(name, counts) for name in ("kept.jsonl", "changed.jsonl", "gone.jsonl", "old.jsonl")
    }
    planned = ["kept.jsonl", "changed.jsonl", "gone.jsonl", "new.jsonl", "never.jsonl"]
    write_run(output, markers, planned=planned)
    (tmp_path / "in" / "new.jsonl").write_bytes(b"not classified yet")  # never.jsonl: deleted meanwhile
    (tmp_path / "in" / "changed.jsonl").write_bytes(b"longer than before")
    (tmp_path / "in" / "gone.jsonl").unlink()
    (tmp_path / "in" / "old.jsonl").unlink()  # no longer among the inputs

    report, status = collect_report(str(output)), compute_status(str(output))

    assert report["files"] == {
        "planned": 5,
        "new": 0,
        "done": 1,  # kept.jsonl
        "done_outside_plan": 1,  # old.jsonl
        "changed": 1,
        "other_settings": 0,
        "vanished": 2,  # gone.jsonl (its output kept) and never.jsonl
        "failed": 0,
        "remaining": 2,  # changed.jsonl and new.jsonl
        "without_times": 1,
        "inputs_checked": True,
    }
    assert (report["files"]["done"], report["files"]["remaining"], report["files"]["vanished"]) == (
        status["files_done"],
        status["files_remaining"],
        status["files_vanished"],
    )
    assert report["documents"]["in"] == status["documents_in"] == 2
    assert report["labels"] == status["labels"] == {"c": {"x": 2}}
    assert [entry["relpath"] for entry in report["drift"]["ranking"]] == ["kept.jsonl"]


def test_a_report_away_from_the_inputs_counts_every_planned_marker(tmp_path):
    """A copy of OUT on a laptop: the inputs cannot be looked at, so the markers are taken as they are."""
    output = tmp_path / "out"
    counts = {"c": {"x": 2}}
    write_run(
        output,
        {name: marker(name, counts) for name in ("a.jsonl", "b.jsonl", "old.jsonl")},
        ["a.jsonl", "b.jsonl"],
    )
    (tmp_path / "in").rename(tmp_path / "elsewhere")
    files = collect_report(str(output))["files"]
    assert (files["done"], files["done_outside_plan"], files["remaining"]) == (2, 1, 0)
    assert (files["changed"], files["vanished"], files["inputs_checked"]) == (0, 0, False)


def _classified(output, files) -> None:
    """Completion markers made from the inputs as they are now (as a run writes them)."""
    for f in files:
        stat = os.stat(f.path)
        done = marker(f.relpath, {"c": {"x": 1}}, input_size=stat.st_size, input_mtime=stat.st_mtime)
        write_marker(marker_path(str(output), f.relpath), dataclasses.replace(done, input_path=f.path))
        write_output(output, f.relpath)


@pytest.mark.parametrize("spec", ["corpus", "corp[1]"])
def test_the_report_checks_inputs_given_relative_or_with_brackets_from_another_directory(
    tmp_path, monkeypatch, spec
):
    """A relative --input (globbed from another cwd) or a directory named like a glob class (never matching
    itself) took the inputs for out of reach: a changed input then counted as done."""
    corpus, output = tmp_path / spec, tmp_path / "out"
    corpus.mkdir()
    for name in ("a.jsonl", "b.jsonl"):
        (corpus / name).write_text('{"text": "x"}\n')
    output.mkdir()
    monkeypatch.chdir(tmp_path)
    files = list_input_files([spec], str(output), "jsonl")
    write_plan(str(output), [spec], files)
    _classified(output, files)
    (corpus / "b.jsonl").write_text('{"text": "longer"}\n')
    monkeypatch.chdir(output)  # `hpc-classify report` run from elsewhere

    report = collect_report(str(output))

    assert report["files"]["inputs_checked"] is True
    assert (report["files"]["done"], report["files"]["changed"], report["files"]["remaining"]) == (1, 1, 1)


def test_a_report_away_from_the_inputs_says_so_on_the_page(tmp_path):
    output, corpus = tmp_path / "out", tmp_path / "in"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text('{"text": "x"}\n')
    output.mkdir()
    files = list_input_files([str(corpus)], str(output), "jsonl")
    write_plan(str(output), [str(corpus)], files)
    _classified(output, files)
    assert "could not be reached" not in render_page(collect_report(str(output)))
    corpus.rename(tmp_path / "elsewhere")

    report = collect_report(str(output))

    assert report["files"]["inputs_checked"] is False and report["files"]["done"] == 1
    assert "could not be reached" in render_page(report)


def test_a_report_of_a_directory_one_cannot_write_goes_where_to_says(tmp_path, capsys):
    """Without write access to the run's directory (a colleague's run), --to writes the report elsewhere,
    and the error without it says so (it said to free space and rerun, a run's remedy)."""
    from hpc_classify.cli.main import main

    output = tmp_path / "out"
    # Unwritable for real: mode 0555, or a read-only tmpfs as root (root writes through 0555).
    with freezable_directory(output) as freeze:
        write_run(output, {"a.jsonl": marker("a.jsonl", {"domain_pred": {"Games": 2}})})
        freeze()
        before = sorted(p.name for p in output.iterdir())
        assert main(["report", "--output", str(output), "--to", str(tmp_path / "mine")]) == 0
        assert sorted(p.name for p in output.iterdir()) == before
        assert json.loads((tmp_path / "mine" / "_report.json").read_text())["files"]["done"] == 1

        assert main(["report", "--output", str(output)]) == 4
        err = capsys.readouterr().err
        assert f"cannot write {output}/_report.json" in err
        assert "HINT: pass --to DIR to write the report elsewhere" in err
        assert sorted(p.name for p in output.iterdir()) == before  # no temp file left behind
        (tmp_path / "a-file").write_text("")
        assert main(["report", "--output", str(output), "--to", str(tmp_path / "a-file")]) == 4
        assert "HINT: choose a --to directory you can write to" in capsys.readouterr().err


def test_the_report_a_run_writes_does_not_list_its_inputs_again(tmp_path, monkeypatch):
    """A run lists its inputs when it starts; walking them again for its own report would double that walk
    (minutes for a million files on a parallel file system). `hpc-classify report` does list them."""
    from hpc_classify.driver import status
    from hpc_classify.report.run_hooks import write_report_quietly

    output, corpus = tmp_path / "out", tmp_path / "in"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text('{"text": "x"}\n')
    output.mkdir()
    write_plan(str(output), [str(corpus)], list_input_files([str(corpus)], str(output), "jsonl"))
    listings = []
    real_expand = status.expand_inputs
    monkeypatch.setattr(
        status, "expand_inputs", lambda specs, *rest: listings.append(specs) or real_expand(specs, *rest)
    )
    write_report_quietly(str(output))
    assert listings == [] and (output / "_report.json").exists()
    collect_report(str(output))
    assert listings == [[str(corpus)]]


def test_a_run_stopped_by_a_signal_writes_no_report_and_says_how_to(tmp_path, caplog):
    """The report reads every marker: after a stop signal (even one every file outlived) the job's last seconds
    are not for it, and the log names the command that writes it."""
    from hpc_classify.report.run_hooks import write_report_quietly

    output = tmp_path / "out"
    output.mkdir()
    with caplog.at_level("INFO", logger="hpc_classify.report.run_hooks"):
        write_report_quietly(str(output), "SIGUSR1")

    assert list(output.iterdir()) == []
    assert [r.getMessage() for r in caplog.records] == [
        "no run report after SIGUSR1 (the job's last seconds are not for reading every marker): "
        f"`hpc-classify report --output {output}` writes it later, as does the next run"
    ]
