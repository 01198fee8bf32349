"""The Slurm node entry and the warning signals (USR1 from classify.sbatch, USR2 from submitit): the
processes it starts survive them, and rank 0's driver never loses one, nor dies of one on its way out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_processes import NodeProcesses
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions, run_node
from hpc_classify.stop_request import WARNING_SIGNALS, StopRequest

# The child signals itself: with the signal blocked it stays pending and the child goes on; otherwise
# USR1's default action kills it.
SIGNALS_ITSELF = (
    "import os, signal; os.kill(os.getpid(), signal.SIGUSR1); os.kill(os.getpid(), signal.SIGUSR2)"
)


def test_a_started_process_survives_the_warning_signals(tmp_path: Path) -> None:
    processes = NodeProcesses(JobPaths.for_job(tmp_path, "42"), "node1")
    processes.spawn("worker", [sys.executable, "-c", SIGNALS_ITSELF + "; print('alive')"], {})
    assert processes.running["worker"].wait(timeout=60) == 0
    assert processes.log("worker").read_text().strip() == "alive"


@pytest.mark.parametrize("warning", WARNING_SIGNALS, ids=lambda sig: sig.name)
def test_a_warning_that_comes_while_a_process_starts_reaches_the_driver(
    tmp_path: Path, monkeypatch, warning: signal.Signals
) -> None:
    real_popen = subprocess.Popen

    def popen_as_the_warning_comes(*args, **kwargs):
        signal.raise_signal(warning)
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", popen_as_the_warning_comes)
    processes = NodeProcesses(JobPaths.for_job(tmp_path, "42"), "node1")
    with StopRequest() as stop:
        processes.spawn("worker", [sys.executable, "-c", "pass"], {})
        assert processes.running["worker"].wait(timeout=60) == 0
        assert stop.signal_name == warning.name
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []).isdisjoint(WARNING_SIGNALS)


def test_rank0_holds_the_stop_signals_until_its_processes_are_stopped(tmp_path: Path, monkeypatch) -> None:
    """A warning while rank 0 stops its scheduler and workers (up to several seconds) must reach the stop
    request, not kill the process and replace the driver's exit code."""
    handlers_while_stopping = []
    monkeypatch.setattr(NodeLauncher, "run_rank0", lambda self, run_driver, stop: 0)
    monkeypatch.setattr(
        NodeProcesses,
        "stop",
        lambda self, grace, kill_after=5.0: handlers_while_stopping.append(signal.getsignal(signal.SIGUSR1)),
    )
    identity = NodeIdentity(0, 1, "node1", ("node1",), "42", 0, "c1:42.0:1714557010:step 0")
    stop = StopRequest()
    assert (
        run_node(
            NodeOptions(job_root=str(tmp_path), device="cpu"),
            None,
            identity=identity,
            stop=stop,
        )
        == 0
    )
    assert handlers_while_stopping == [stop._handle]


def test_the_stop_request_nests_and_only_the_outermost_exit_restores_the_handlers() -> None:
    before = signal.getsignal(signal.SIGUSR1)
    stop = StopRequest()
    with stop:
        with stop:
            assert signal.getsignal(signal.SIGUSR1) == stop._handle
        assert signal.getsignal(signal.SIGUSR1) == stop._handle
    assert signal.getsignal(signal.SIGUSR1) == before


def test_a_warning_while_the_node_entry_reads_the_runs_configuration_reaches_the_driver(
    tmp_path: Path, monkeypatch
) -> None:
    """Reading the configuration imports the classifiers (about a second): a warning then must not kill
    rank 0 (USR1's default action) but reach the stop request its driver gets."""
    from hpc_classify.cli import node, run_config
    from hpc_classify.cli.main import build_parser

    real_config_from_args = run_config.config_from_args

    def config_as_the_warning_comes(args, **checks):
        signal.raise_signal(signal.SIGUSR1)
        return real_config_from_args(args, **checks)

    handed_on = []
    monkeypatch.setattr(run_config, "config_from_args", config_as_the_warning_comes)
    monkeypatch.setattr(node, "run_this_node", lambda options, config, stop: handed_on.append(stop) or 3)
    argv = ["node", "--", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--device", "cpu"]
    args = build_parser().parse_args(argv)
    assert args.handler(args) == 3
    assert [stop.signal_name for stop in handed_on] == ["SIGUSR1"]


def test_the_other_ranks_entry_ignores_only_the_warnings_term_and_int_still_end_it(
    tmp_path: Path, monkeypatch
) -> None:
    """Only rank 0 runs a driver to stop: another rank that took TERM and INT as stop requests would
    outlive a Ctrl-C or scancel's TERM."""
    from hpc_classify.cli import node, run_config
    from hpc_classify.cli.main import build_parser

    real_config_from_args = run_config.config_from_args
    seen = {}

    def config_looking_at_the_handlers(args, *, check_inputs):
        seen.update(
            {sig.name: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
        )
        seen["check_inputs"] = check_inputs  # only rank 0 plans, so only it looks up an input list's entries
        return real_config_from_args(args, check_inputs=check_inputs)

    handed_on = []
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setattr(run_config, "config_from_args", config_looking_at_the_handlers)
    monkeypatch.setattr(node, "run_this_node", lambda options, config, stop: handed_on.append(stop) or 0)
    before = {sig.name: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    argv = ["node", "--", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--device", "cpu"]
    args = build_parser().parse_args(argv)
    assert args.handler(args) == 0
    assert handed_on == [None]
    assert seen == {**before, "SIGUSR1": signal.SIG_IGN, "check_inputs": False}


# The signal comes between the temp file's write and its rename, as a requeue's SIGTERM can.
# The child starts with Python's own dispositions: a shell's background job (CI's) inherits SIGINT ignored.
SIGNALLED_BEFORE_THE_RENAME = """
import json, os, signal, sys
from pathlib import Path
from hpc_classify.cluster import node_files
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGTERM, signal.SIG_DFL)
real_replace = os.replace
def replace_after_the_signal(src, dst):
    os.kill(os.getpid(), signal.{sig})
    real_replace(src, dst)
node_files.os.replace = replace_after_the_signal
node_files.write_json(Path(sys.argv[1]), {{"node": "node3"}})
print("went on")
"""


@pytest.mark.parametrize("sig", ["SIGTERM", "SIGINT"])
def test_a_job_ending_signal_during_write_json_waits_for_the_rename_then_ends_the_process(
    tmp_path: Path, sig: str
) -> None:
    record = tmp_path / "node-exit.json"
    done = subprocess.run(
        [sys.executable, "-c", SIGNALLED_BEFORE_THE_RENAME.format(sig=sig), str(record)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    # SIGINT: Python's KeyboardInterrupt, raised after the write, ends the process by SIGINT as well.
    assert done.returncode == -getattr(signal, sig), done.stderr
    assert "went on" not in done.stdout
    assert json.loads(record.read_text()) == {"node": "node3"}
    assert [p.name for p in tmp_path.iterdir()] == ["node-exit.json"]  # no `.node-exit.json.tmp-<pid>`


# `hpc-classify node` as srun starts it, the warning coming while the parser's imports run (before any
# handler of ours exists): the driver is stood in for by a print of what it would have been handed.
WARNED_WHILE_THE_PARSER_IS_BUILT = """
import os, signal, sys
from hpc_classify.cli import main, node
real_build_parser = main.build_parser
def build_parser_as_the_warning_comes():
    os.kill(os.getpid(), signal.{sig})
    return real_build_parser()
main.build_parser = build_parser_as_the_warning_comes
node.run_this_node = lambda options, config, stop: print("driver handed", stop and stop.signal_name) or 3
sys.exit(main.main(sys.argv[1:]))
"""


@pytest.mark.parametrize("rank", ["0", "1"])
@pytest.mark.parametrize("sig", ["SIGUSR1", "SIGUSR2"])
def test_a_warning_while_the_command_line_is_parsed_does_not_kill_the_node_task(
    tmp_path: Path, rank: str, sig: str
) -> None:
    argv = ["node", "--", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--device", "cpu"]
    done = subprocess.run(
        [sys.executable, "-c", WARNED_WHILE_THE_PARSER_IS_BUILT.format(sig=sig), *argv],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SLURM_PROCID": rank},
    )
    assert done.returncode == 3, done.stderr
    # Rank 0's driver gets the warning; the other ranks ignore it.
    assert done.stdout.splitlines() == [f"driver handed {sig if rank == '0' else None}"]


def test_another_command_releases_the_warnings_it_held_while_parsing(tmp_path: Path) -> None:
    from hpc_classify.cli.main import main

    assert main(["status", "--output", str(tmp_path / "missing")]) != 0
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []).isdisjoint(WARNING_SIGNALS)
