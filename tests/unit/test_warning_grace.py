"""Two graces for the files in flight (stop_request.py, warning_grace.resolve_warning_grace, driver/dispatch.py): the
time-limit warning (USR1 of slurm/classify.sbatch, USR2 of submit) comes 300 s before the limit, so the files in
flight get most of that lead; SIGTERM/SIGINT leave only Slurm's KillWait. Before, the 20 s meant for SIGTERM was
applied to the warning too, and a piece that takes minutes was thrown away at nearly every time-limit requeue.
A clock of the test's own: no sleeps, no timed assertions."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fake_dispatcher import make_dispatcher

from hpc_classify.cli.main import main
from hpc_classify.config import RunConfig
from hpc_classify.driver.grouping import FileQueue
from hpc_classify.errors import ConfigError
from hpc_classify.stop_request import StopRequest
from hpc_classify.warning_grace import resolve_warning_grace, warning_grace_for_lead

REPO = Path(__file__).resolve().parents[2]
LEAD = "HPC_CLASSIFY_WARNING_LEAD"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _stop(clock: Clock) -> StopRequest:
    stop = StopRequest(())
    stop.clock = clock
    return stop


def test_a_warning_gets_the_warning_grace_and_a_term_the_stop_grace() -> None:
    clock = Clock()
    warned = _stop(clock)
    warned.request("SIGUSR1")
    clock.now += 200
    assert not warned.grace_over(20, 240)  # long past the 20 s of a TERM
    clock.now += 40
    assert warned.grace_over(20, 240)
    terminated = _stop(clock)
    terminated.request("SIGTERM")
    clock.now += 19
    assert not terminated.grace_over(20, 240)
    clock.now += 1
    assert terminated.grace_over(20, 240)


def test_a_term_after_the_warning_starts_the_term_grace_from_its_arrival() -> None:
    clock = Clock()
    stop = _stop(clock)
    stop.request("SIGUSR2")
    clock.now += 100
    stop.request("SIGTERM")  # the time limit itself, or a cancel
    assert not stop.abandon and stop.warned and stop.signal_name == "SIGUSR2"  # still a requeue's stop
    clock.now += 19
    assert not stop.grace_over(20, 240)
    clock.now += 1
    assert stop.grace_over(20, 240)
    # ... unless the warning's grace ends first.
    stop = _stop(clock)
    stop.request("SIGUSR1")
    clock.now += 230
    stop.request("SIGINT")
    clock.now += 10
    assert stop.grace_over(20, 240)


@pytest.mark.parametrize(
    ("first", "second"), [("SIGUSR1", "SIGUSR1"), ("SIGTERM", "SIGTERM"), ("SIGINT", "SIGUSR1")]
)
def test_a_second_signal_abandons_at_once(first: str, second: str) -> None:
    stop = _stop(Clock())
    stop.request(first)
    stop.request(second)
    assert stop.abandon and stop.grace_over(20, 240)


def test_a_third_signal_after_warning_and_term_abandons_at_once() -> None:
    stop = _stop(Clock())
    for name in ("SIGUSR1", "SIGTERM", "SIGTERM"):
        stop.request(name)
    assert stop.abandon and stop.grace_over(20, 240)


class _Future:
    key = "classify-a.jsonl-1-1-x"

    def done(self) -> bool:
        return False


class _Planned:
    relpath = path = "a.jsonl"


class _Client:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.cancelled_at: float | None = None

    def cancel(self, futures: list) -> None:
        self.cancelled_at = self.clock.now


def _abandoned_after(tmp_path: Path, signals: dict[float, str], monkeypatch, **settings) -> float:
    """Seconds from the first of `signals` (seconds after the start: name) to the moment the driver's loop
    abandons its one task in flight, which never finishes."""
    clock = Clock()
    start = clock.now
    stop = _stop(clock)
    client = _Client(clock)
    dispatcher = make_dispatcher(client, tmp_path, stop=stop, **settings)
    monkeypatch.setattr(dispatcher.watch, "check", lambda: None)
    dispatcher.in_flight = {_Future(): [_Planned()]}

    def wait(futures: list, timeout: float, return_when: str) -> None:  # a second of the loop, on our clock
        clock.now += 1.0
        for at, name in signals.items():
            if clock.now - start == at:
                stop.request(name)

    stop.request(signals[0.0])
    dispatcher._loop(FileQueue([]), wait)
    assert client.cancelled_at is not None and dispatcher.unfinished
    return client.cancelled_at - start


def test_the_drivers_loop_gives_a_warning_most_of_its_lead(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(LEAD, raising=False)
    assert _abandoned_after(tmp_path, {0.0: "SIGUSR1"}, monkeypatch) == 240  # not stop_grace's 20
    assert _abandoned_after(tmp_path, {0.0: "SIGTERM"}, monkeypatch) == 20
    assert _abandoned_after(tmp_path, {0.0: "SIGUSR2", 100.0: "SIGTERM"}, monkeypatch) == 120
    assert _abandoned_after(tmp_path, {0.0: "SIGUSR1"}, monkeypatch, warning_grace=30) == 30
    monkeypatch.setenv(LEAD, "600")  # the batch script's lead
    assert _abandoned_after(tmp_path, {0.0: "SIGUSR1"}, monkeypatch, stop_grace=5) == 540


def _config(**settings) -> RunConfig:
    return RunConfig(inputs=("in",), output="out", classifiers=("stored only",), **settings)


def test_the_warning_grace_follows_the_lead_unless_given() -> None:
    assert warning_grace_for_lead(300) == 240 and warning_grace_for_lead(60) == 30
    assert resolve_warning_grace(_config(), {}) == 240
    assert resolve_warning_grace(_config(), {LEAD: "900"}) == 840
    assert resolve_warning_grace(_config(warning_grace=100), {LEAD: "900"}) == 100
    assert resolve_warning_grace(_config(warning_grace=500), {}) == 500  # no lead known: not checked
    with pytest.raises(
        ConfigError, match=r"warning_grace \(--warning-grace\) 300 s is not below the time-limit "
    ):
        resolve_warning_grace(_config(warning_grace=300), {LEAD: "300"})
    with pytest.raises(ConfigError, match=f"{LEAD}='soon' is not a number of seconds > 0"):
        resolve_warning_grace(_config(), {LEAD: "soon"})
    with pytest.raises(ConfigError, match="warning_grace must be a finite number of seconds"):
        _config(warning_grace="long")
    with pytest.raises(ConfigError, match="warning_grace must be a finite number of seconds >= 0, not -1"):
        _config(warning_grace=-1)


def test_the_flag_and_the_yaml_key_set_the_warning_grace(tmp_path: Path) -> None:
    from hpc_classify.cli.run import parse_run_argv
    from hpc_classify.cli.run_config import config_from_args

    args = ["--input", "in", "--output", "out", "--classifier", "domain", "--model", str(tmp_path)]
    assert config_from_args(parse_run_argv([*args, "--warning-grace", "100"])).warning_grace == 100
    yaml = tmp_path / "run.yaml"
    yaml.write_text("warning-grace: 50\nstop_grace: 10\n")
    config = config_from_args(parse_run_argv([*args, "--config", str(yaml)]))
    assert (config.warning_grace, config.stop_grace) == (50, 10)
    assert config_from_args(parse_run_argv(args)).warning_grace is None  # follows the lead


class _Job:
    job_id = "1"

    class paths:  # noqa: N801 - submitit's attribute
        stdout = "log"


def test_submit_gives_the_warning_its_own_lead_less_the_margin(tmp_path: Path, monkeypatch) -> None:
    from hpc_classify.cluster import submit

    def warning_grace(*submit_flags: str, run_flags: tuple[str, ...] = ()) -> float:
        """The warning grace of the run that `hpc-classify submit SUBMIT_FLAGS -- ... RUN_FLAGS` submits."""
        entries = []
        monkeypatch.setattr(submit, "submit", lambda options, entry: entries.append(entry) or _Job())
        run = ["--input", str(tmp_path), "--output", str(tmp_path / "o"), "--device", "cpu", *run_flags]
        assert main(["submit", "--no-wait", *submit_flags, "--", *run]) == 0
        return entries[0].config.warning_grace

    assert warning_grace() == 240
    assert warning_grace("--sbatch", "signal=USR2@900", "--time", "60") == 840
    assert warning_grace("--local") == 15  # submitit's local executor warns 30 s before --time
    assert warning_grace(run_flags=("--warning-grace", "120")) == 120


def test_submit_refuses_a_warning_grace_not_below_its_lead(tmp_path: Path, monkeypatch, capsys) -> None:
    from hpc_classify.cluster import submit

    monkeypatch.setattr(submit, "submit", lambda *args: pytest.fail("a job was submitted"))
    argv = [
        "submit",
        "--sbatch",
        "signal=USR2@200",
        "--",
        "--input",
        str(tmp_path),
        "--output",
        str(tmp_path),
    ]
    assert main([*argv, "--warning-grace", "200", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert (
        "--warning-grace) 200 s is not below the time-limit warning's lead of 200 s (--sbatch signal=USR2@200)"
        in err
    )
    assert "give --warning-grace 140 or less" in err


def test_submits_job_exports_its_lead_for_the_driver(monkeypatch) -> None:
    from hpc_classify.cluster import submit
    from hpc_classify.cluster.submit import SubmitOptions

    class Executor:  # submitit's AutoExecutor, as far as make_executor uses it
        cluster = "slurm"

        def __init__(self, folder, cluster=None, **extra):
            pass

        def update_parameters(self, **params):
            self.params = params

    monkeypatch.setattr("submitit.AutoExecutor", Executor)
    setup = submit.make_executor(SubmitOptions(folder="f", sbatch={"signal": "USR2@600"})).params[
        "slurm_setup"
    ]
    assert f"export {LEAD}=600" in setup


def test_the_batch_script_exports_the_lead_of_its_signal_before_srun() -> None:
    script = (REPO / "slurm" / "classify.sbatch").read_text()
    lead = re.search(r"^#SBATCH --signal=B:USR1@(\d+)$", script, re.M).group(1)
    lines = script.splitlines()
    export = f'export {LEAD}="${{{LEAD}:-{lead}}}"'
    srun = next(i for i, line in enumerate(lines) if line.lstrip().startswith("srun "))
    assert export in [line.strip() for line in lines[:srun]]
