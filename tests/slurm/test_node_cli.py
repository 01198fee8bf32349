"""The launcher's command lines, without a cluster: option splitting, job directories, worker commands,
and `hpc-classify submit --local` through submitit's local executor."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_classify.cli.main import build_parser
from hpc_classify.cli.node import node_options, split_node_args
from hpc_classify.cli.run import parse_run_argv
from hpc_classify.cli.run_config import config_from_args
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_files import write_json
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions
from hpc_classify.errors import ConfigError


def test_node_options_are_taken_out_of_the_run_options() -> None:
    args = build_parser().parse_args(
        ["node", "--worker-timeout", "7", "--", "--input", "in", "--interface", "ib0", "--protocol", "ucxx"]
    )
    node_args, run_args = split_node_args(args)
    assert (node_args.worker_timeout, node_args.interface) == (7.0, "ib0")
    assert run_args == ["--input", "in", "--protocol", "ucxx"]
    config = config_from_args(parse_run_argv([*run_args, "--output", "out", "--device", "cpu"]))
    options = node_options(node_args, config)
    assert (options.protocol, options.device, options.interface) == ("ucxx", "cpu", "ib0")
    assert options.job_root.endswith("/out/_jobs") and options.worker_timeout == 7.0


def test_death_timeout_given_after_the_separator_reaches_the_launcher() -> None:
    args = build_parser().parse_args(["node", "--", "--input", "in", "--death-timeout", "20"])
    node_args, run_args = split_node_args(args)
    assert run_args == ["--input", "in"]
    config = config_from_args(parse_run_argv([*run_args, "--output", "out", "--device", "cpu"]))
    assert node_options(node_args, config).death_timeout == 20.0
    default = split_node_args(build_parser().parse_args(["node", "--", "--input", "in"]))[0]
    assert node_options(default, config).death_timeout == 60.0


def test_each_restart_of_a_job_gets_its_own_directory(tmp_path: Path) -> None:
    nodes = ("node1", "node2", "node3")
    first = NodeLauncher(NodeOptions(job_root=str(tmp_path)), NodeIdentity(0, 3, "node1", nodes, "42", 0))
    again = NodeLauncher(NodeOptions(job_root=str(tmp_path)), NodeIdentity(0, 3, "node1", nodes, "42", 1))
    assert first.job_dir == tmp_path / "42" and again.job_dir == tmp_path / "42.1"
    assert JobPaths.for_job(tmp_path, "42", 1).scheduler_file == tmp_path / "42.1" / "scheduler.json"


def test_cpu_worker_command_names_the_slurm_node(tmp_path: Path) -> None:
    options = NodeOptions(job_root=str(tmp_path), protocol="ucxx", interface="ib0", device="cpu")
    launcher = NodeLauncher(options, NodeIdentity(1, 2, "node2", ("node1", "node2"), "7", 0))
    argv = launcher.worker_command()
    assert argv[1:3] == ["-m", "distributed.cli.dask_worker"]
    for flag, value in (
        ("--name", "node2-0"),
        ("--protocol", "ucxx"),
        ("--interface", "ib0"),
        ("--nworkers", "1"),
    ):
        assert argv[argv.index(flag) + 1] == value
    for node in ("node1", "node2"):
        launcher.paths.node_dir(node).mkdir(parents=True)
    write_json(launcher.paths.node_workers("node1"), {"workers": 1})
    assert launcher.roster.missing_nodes(["node1-0", "node2-0"]) == ["node2"]  # node2 has not said how many
    write_json(launcher.paths.node_workers("node2"), {"workers": 1})
    assert launcher.roster.missing_nodes(["node1-0"]) == ["node2"]
    assert launcher.roster.missing_nodes(["node1-0", "node2-0"]) == []


def test_rank0_waits_for_each_nodes_own_worker_count(tmp_path: Path) -> None:
    """An uneven allocation (8 GPUs on one node, 4 on the other): each node's count is its own."""
    nodes = ("n1", "n2")
    launcher = NodeLauncher(
        NodeOptions(job_root=str(tmp_path), device="cpu"), NodeIdentity(0, 2, "n1", nodes, "9", 0)
    )
    for node, count in (("n1", 8), ("n2", 4)):
        launcher.paths.node_dir(node).mkdir(parents=True)
        write_json(launcher.paths.node_workers(node), {"workers": count})
    n1 = [f"n1-{i}" for i in range(8)]
    assert launcher.roster.missing_nodes([*n1, "n2-0", "n2-1", "n2-2", "n2-3"]) == []
    assert launcher.roster.missing_nodes([*n1, "n2-0", "n2-1", "n2-2"]) == ["n2"]
    assert launcher.roster.missing_nodes(n1[:7] + ["n2-0", "n2-1", "n2-2", "n2-3"]) == ["n1"]
    assert launcher.roster.expected_workers() == {"n1": 8, "n2": 4}


def test_workers_per_node_other_than_the_gpu_count_is_refused_on_gpu_nodes(
    tmp_path: Path, monkeypatch
) -> None:
    """dask-cuda starts one worker per visible GPU: another count would never join (a timeout)."""
    from hpc_classify.cluster import slurm_node

    monkeypatch.setattr(slurm_node, "visible_gpu_count", lambda: 8)
    identity = NodeIdentity(0, 1, "g1", ("g1",), "9", 0)
    with pytest.raises(ConfigError, match="--workers-per-node 4 on g1, which has 8 GPU"):
        NodeLauncher(NodeOptions(job_root=str(tmp_path), workers_per_node=4), identity)
    assert (
        NodeLauncher(NodeOptions(job_root=str(tmp_path), workers_per_node=8), identity).workers_per_node == 8
    )
    assert NodeLauncher(NodeOptions(job_root=str(tmp_path)), identity).workers_per_node == 8
    cpu = NodeLauncher(NodeOptions(job_root=str(tmp_path), workers_per_node=4, device="cpu"), identity)
    assert cpu.workers_per_node == 4


def test_submit_local_runs_the_node_entry_through_submitit(
    tiny_domain_model: Path, topic_corpus: Path, tmp_path
):
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        "-m",
        "hpc_classify.cli.main",
        "submit",
        "--local",
        "--",
        "--input",
        str(topic_corpus),
    ]
    cmd += ["--output", str(out), "--model", str(tiny_domain_model), "--device", "cpu"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done = sorted(p.name for p in (out / "_markers").glob("*.done.json"))
    assert done == [f"shard-{i:02d}.jsonl.done.json" for i in range(3)]
    rows = sum(json.loads(p.read_text())["rows_out"] for p in (out / "_markers").glob("*.done.json"))
    assert rows == 45


def _node_options(*argv: str):
    node_args, run_args = split_node_args(build_parser().parse_args(["node", "--", *argv]))
    config = config_from_args(
        parse_run_argv([*run_args, "--input", "in", "--output", "out", "--device", "cpu"])
    )
    return node_options(node_args, config)


def test_threads_per_worker_takes_effect_on_slurm(tmp_path: Path) -> None:
    options = _node_options("--threads-per-worker", "3", "--interface", "ib0")
    assert options.threads_per_worker == 3
    launcher = NodeLauncher(options, NodeIdentity(1, 2, "node2", ("node1", "node2"), "7", 0))
    argv = launcher.worker_command()
    assert argv[argv.index("--nthreads") + 1] == "3"
    assert _node_options("--worker-threads", "2").threads_per_worker == 2
    assert _node_options().threads_per_worker == 1
    with pytest.raises(ConfigError, match=r"--worker-threads 2 and --threads-per-worker 3 disagree"):
        _node_options("--worker-threads", "2", "--threads-per-worker", "3")


@pytest.mark.parametrize(
    ("flags", "refused"),
    [
        (["--workers", "4"], "--workers does not apply on Slurm"),
        (["--cluster", "jobqueue"], "--cluster does not apply on Slurm"),
        (["--scheduler-file", "s.json"], "--scheduler-file does not apply on Slurm"),
    ],
)
def test_settings_of_another_cluster_are_refused_on_slurm(flags: list[str], refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        _node_options(*flags)
