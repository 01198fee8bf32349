"""`hpc-classify unify-schema` in this process: `--threads` checked before anything starts; a stop signal lets
the rewrites in flight finish, starts none, and says how many were rewritten; a rerun finishes."""

from __future__ import annotations

import signal
import threading

import pyarrow.parquet as pq
import pytest

from hpc_classify.cli.main import main
from hpc_classify.driver import output_schema
from tests.unit.test_output_schema import TABLES, _marker_sizes_match, _outputs


@pytest.mark.parametrize(
    ("value", "why"), [("0", "must be >= 1, not 0"), ("two", "not a whole number: 'two'")]
)
def test_threads_must_be_a_whole_number_of_one_or_more(tmp_path, capsys, value, why):
    with pytest.raises(SystemExit) as exit_:
        main(["unify-schema", "--output", str(tmp_path), "--threads", value])
    assert exit_.value.code == 2
    assert f"unify-schema: error: argument --threads: {why}" in capsys.readouterr().err


def test_a_signal_during_the_rewrites_finishes_those_in_flight_and_says_how_many(
    tmp_path, monkeypatch, capsys
):
    _outputs(tmp_path, TABLES)
    untouched = {name: (tmp_path / f"{name}.parquet").read_bytes() for name in ("c", "d")}
    both_started = threading.Barrier(2, timeout=30)
    real_conform = output_schema.conform_file

    def conform_after_a_sigint(path, schema, **kwargs):
        if both_started.wait() == 0:  # two rewrites in flight: one of them takes the signal
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return real_conform(path, schema, **kwargs)

    monkeypatch.setattr(output_schema, "conform_file", conform_after_a_sigint)
    handler_before = signal.getsignal(signal.SIGINT)  # Python's own, unless an earlier test left another
    code = main(["unify-schema", "--output", str(tmp_path), "--threads", "2"])

    assert code == 3
    assert capsys.readouterr().out == (
        "stopped by SIGINT while rewriting: 2 of 4 differing Parquet output(s) rewritten to one schema, every "
        f"file whole; no _common_metadata written; rerun `hpc-classify unify-schema --output {tmp_path}` to "
        "finish\n"
    )
    assert signal.getsignal(signal.SIGINT) is handler_before  # put back
    schemas = {name: pq.read_schema(tmp_path / f"{name}.parquet") for name in TABLES}
    assert schemas["a"].equals(schemas["b"]) and not schemas["a"].equals(schemas["c"])
    assert {name: (tmp_path / f"{name}.parquet").read_bytes() for name in ("c", "d")} == untouched
    assert _marker_sizes_match(tmp_path)
    monkeypatch.setattr(output_schema, "conform_file", real_conform)

    assert main(["unify-schema", "--output", str(tmp_path), "--threads", "2"]) == 0
    assert capsys.readouterr().out == (
        f"4 Parquet output(s) share one schema (2 rewritten); {tmp_path / '_common_metadata'}\n"
    )
    assert all(pq.read_schema(tmp_path / f"{n}.parquet").equals(schemas["a"]) for n in TABLES)


def test_a_lock_taken_over_during_the_rewrites_is_a_stop_not_an_error(tmp_path, monkeypatch, capsys):
    """The rename the take-over refuses is this command's stop (exit 3), not a directory error (exit 2)."""
    from hpc_classify.cli import unify_schema
    from hpc_classify.driver.lock import LOCK_LOST

    _outputs(tmp_path, TABLES)
    before = {name: (tmp_path / f"{name}.parquet").read_bytes() for name in TABLES}
    stops: list[unify_schema.StopOnSignals] = []
    real_stop = unify_schema.StopOnSignals
    monkeypatch.setattr(unify_schema, "StopOnSignals", lambda: stops.append(real_stop()) or stops[-1])
    real_conform = output_schema.conform_file

    def conform_after_a_take_over(path, schema, **kwargs):
        stops[0].lose_lock(LOCK_LOST)  # the heartbeat thread's word, as the rewrite is under way
        return real_conform(path, schema, **kwargs)

    monkeypatch.setattr(output_schema, "conform_file", conform_after_a_take_over)
    code = main(["unify-schema", "--output", str(tmp_path), "--threads", "1"])

    assert code == 3
    assert capsys.readouterr().out == (
        f"stopped by {LOCK_LOST}: another run took {tmp_path} over; every file is whole; that run brings its "
        "outputs to one schema when it completes\n"
    )
    assert {name: (tmp_path / f"{name}.parquet").read_bytes() for name in TABLES} == before
