"""Launcher options that used to be accepted and then ignored are errors up front (an option we accept takes
effect or says why it cannot): `--device cuda`, `--rmm-pool-size` and `--enable-cudf-spill` on a Slurm node
with no visible GPU, `submit --local` with Slurm's own options, `--worker-threads 0`. No cluster, no Slurm."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hpc_classify.cli.main import build_parser, main
from hpc_classify.cli.node import split_node_args
from hpc_classify.cluster import local, slurm_node
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions
from hpc_classify.cluster.submit import SubmitOptions
from hpc_classify.errors import ClusterError, ConfigError

NODE2 = NodeIdentity(1, 2, "node2", ("node1", "node2"), "42", 0)


def _node(tmp_path: Path, monkeypatch, gpus: int, **options) -> NodeLauncher:
    monkeypatch.setattr(slurm_node, "visible_gpu_count", lambda: gpus)
    return NodeLauncher(NodeOptions(job_root=str(tmp_path), interface="ib0", **options), NODE2)


def test_device_cuda_on_a_slurm_node_without_a_gpu_is_refused(tmp_path: Path, monkeypatch) -> None:
    """It used to start CPU workers, on which every file then failed in the engine."""
    with pytest.raises(ConfigError, match="--device cuda but no GPU is visible on node node2") as refused:
        _node(tmp_path, monkeypatch, 0, device="cuda")
    assert "--gpus-per-node" in refused.value.hint and "--device cpu" in refused.value.hint
    assert _node(tmp_path, monkeypatch, 4, device="cuda").worker_command()[1:5] == [
        "-m",
        "dask",
        "cuda",
        "worker",
    ]
    assert _node(tmp_path, monkeypatch, 0, device="auto").workers_per_node == 1  # auto: CPU workers


def test_device_cuda_without_a_gpu_is_the_same_error_for_a_local_cluster(monkeypatch) -> None:
    monkeypatch.setattr(local, "visible_gpu_count", lambda: 0)
    with pytest.raises(ConfigError, match="--device cuda but no GPU is visible on this machine"):
        local.start_local_cluster(device="cuda")


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"rmm_pool_size": "70GB"}, "--rmm-pool-size given"),
        ({"enable_cudf_spill": True}, "--enable-cudf-spill given"),
        (
            {"rmm_pool_size": "70GB", "enable_cudf_spill": True},
            "--rmm-pool-size and --enable-cudf-spill given",
        ),
    ],
)
def test_dask_cuda_options_on_a_node_without_a_gpu_are_refused(
    tmp_path: Path, monkeypatch, options: dict, named: str
) -> None:
    """They used to be dropped from the CPU workers' command line without a word."""
    with pytest.raises(ConfigError, match=f"{named}, but no GPU is visible on node node2") as refused:
        _node(tmp_path, monkeypatch, 0, **options)
    assert "--gpus-per-node" in refused.value.hint  # the likely cause: a GPU partition without GPUs asked for
    with pytest.raises(ConfigError, match=f"{named} with --device cpu: node node2 starts CPU workers"):
        _node(tmp_path, monkeypatch, 8, device="cpu", **options)


def test_dask_cuda_options_reach_the_gpu_workers_and_their_defaults_need_no_gpu(
    tmp_path: Path, monkeypatch
) -> None:
    argv = _node(tmp_path, monkeypatch, 2, rmm_pool_size="70GB", enable_cudf_spill=True).worker_command()
    assert argv[argv.index("--rmm-pool-size") + 1] == "70GB" and "--enable-cudf-spill" in argv
    cpu = _node(tmp_path, monkeypatch, 0).worker_command()  # neither given: the defaults are off
    assert "--rmm-pool-size" not in cpu and "--enable-cudf-spill" not in cpu


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"gpus_per_node": 8}, "--gpus-per-node given with --local"),
        ({"partition": "gpu"}, "--partition given with --local"),
        ({"sbatch": {"account": "abc"}}, "--sbatch given with --local"),
        (
            {"gpus_per_node": 8, "partition": "gpu", "sbatch": {"qos": "high"}},
            "--gpus-per-node, --partition, --sbatch given with --local",
        ),
    ],
)
def test_submit_local_refuses_slurms_own_options(given: dict, named: str) -> None:
    """submitit's local executor has no Slurm: they used to be dropped."""
    with pytest.raises(ConfigError, match=named):
        SubmitOptions(folder="f", local=True, **given)
    assert SubmitOptions(folder="f", **given).local is False  # for Slurm they are fine
    assert SubmitOptions(folder="f", local=True).local


def test_max_requeues_reaches_submitits_timeout_budget(tmp_path: Path, monkeypatch) -> None:
    from hpc_classify.cluster import submit

    submitted = []
    monkeypatch.setattr(
        submit, "submit", lambda options, *args: submitted.append(options) or pytest.fail("stop")
    )
    argv = ["submit", "--max-requeues", "50", "--", "--input", str(tmp_path), "--output", str(tmp_path / "o")]
    with pytest.raises(pytest.fail.Exception):
        main([*argv, "--device", "cpu"])
    assert submitted[0].max_requeues == 50

    class Executor:  # submitit's AutoExecutor, as far as make_executor uses it
        cluster = "slurm"

        def __init__(self, folder, cluster=None, **extra):
            self.extra = extra

        def update_parameters(self, **params):
            self.params = params

    monkeypatch.setattr("submitit.AutoExecutor", Executor)
    assert submit.make_executor(submitted[0]).extra == {"slurm_max_num_timeout": 50}
    assert submit.make_executor(SubmitOptions(folder="f")).extra == {"slurm_max_num_timeout": 10}
    with pytest.raises(ConfigError, match="--max-requeues given with --local"):
        SubmitOptions(folder="f", local=True, max_requeues=3)


def test_the_submit_command_line_says_so_with_exit_code_2(tmp_path: Path, monkeypatch, capsys) -> None:
    from hpc_classify.cluster import submit

    monkeypatch.setattr(submit, "submit", lambda *args: pytest.fail("a job was submitted"))
    argv = [
        "submit",
        "--local",
        "--partition",
        "gpu",
        "--",
        "--input",
        str(tmp_path),
        "--output",
        str(tmp_path),
    ]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "--partition given with --local" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--worker-threads", "--workers-per-node"])
@pytest.mark.parametrize("value", ["0", "-2"])
def test_worker_counts_below_one_are_refused_when_parsed(flag: str, value: str, capsys) -> None:
    """`--worker-threads 0` used to become 1, and `--workers-per-node 0` the default, without a word."""
    for argv in (["node", flag, value, "--"], ["node", "--", "--input", "in", flag, value]):
        with pytest.raises(SystemExit) as parsing:
            split_node_args(build_parser().parse_args(argv))
        assert parsing.value.code == 2
        assert f"argument {flag}: must be >= 1, not {int(value)}" in capsys.readouterr().err
    node_args, _ = split_node_args(build_parser().parse_args(["node", flag, "3", "--"]))
    assert vars(node_args)[flag[2:].replace("-", "_")] == 3


@pytest.mark.parametrize(
    ("command", "flag", "value", "says"),
    [
        ("submit", "--time", "-5", "must be >= 0, not -5"),
        ("submit", "--nodes", "0", "must be >= 1, not 0"),
        ("submit", "--gpus-per-node", "-1", "must be >= 0, not -1"),
        ("submit", "--worker-timeout", "inf", "must be a finite number of seconds > 0, not 'inf'"),
        ("node", "--worker-timeout", "-1", "must be a finite number of seconds > 0, not '-1'"),
        ("node", "--death-timeout", "nan", "must be a finite number of seconds > 0, not 'nan'"),
        ("node", "--death-timeout", "0", "must be a finite number of seconds > 0, not '0'"),
    ],
)
def test_job_numbers_that_would_fail_inside_the_job_are_refused_when_parsed(
    command: str, flag: str, value: str, says: str, capsys
) -> None:
    """They used to be queued and then fail inside the job as a traceback."""
    with pytest.raises(SystemExit) as parsing:
        build_parser().parse_args([command, flag, value, "--"])
    assert parsing.value.code == 2
    assert f"argument {flag}: {says}" in capsys.readouterr().err


def test_the_python_path_checks_the_same_numbers() -> None:
    for options, says in [
        ({"time_min": -5}, "--time must be a whole number >= 0, not -5"),
        ({"gpus_per_node": -1}, "--gpus-per-node must be a whole number >= 0, not -1"),
        ({"nodes": 0}, "--nodes must be a whole number >= 1, not 0"),
    ]:
        with pytest.raises(ConfigError, match=says):
            SubmitOptions(folder="f", **options)
    for options, says in [
        ({"death_timeout": float("nan")}, "death_timeout must be a finite number of seconds > 0, not nan"),
        ({"worker_timeout": -1.0}, "worker_timeout must be a finite number of seconds > 0, not -1.0"),
        ({"workers_per_node": 0}, "workers_per_node must be a whole number >= 1, not 0"),
    ]:
        with pytest.raises(ConfigError, match=says):
            NodeOptions(job_root="j", **options)
    node_args, _ = split_node_args(build_parser().parse_args(["node", "--death-timeout", "2.5", "--"]))
    assert node_args.death_timeout == 2.5
    # --time 0 is Slurm's "no time limit" (where the partition allows it); numpy's integers are counts too.
    assert build_parser().parse_args(["submit", "--time", "0", "--"]).time == 0
    assert SubmitOptions(folder="f", time_min=0, nodes=np.int64(2)).nodes == 2


def _refusal_hint(options: dict) -> str:
    with pytest.raises(ConfigError) as refused:
        SubmitOptions(folder="f", **options)
    return refused.value.hint


def test_a_time_limit_within_the_drain_warning_is_refused() -> None:
    """With --time 5 and the 300 s warning lead, Slurm warns the job as it starts: it would drain at once and
    requeue itself max_requeues times, classifying nothing."""
    for options in ({"time_min": 5}, {"time_min": 6}, {"time_min": 2, "sbatch": {"signal": "USR2@60"}}):
        with pytest.raises(ConfigError, match="leaves the job no time to classify") as refused:
            SubmitOptions(folder="f", **options)
        assert "signal=USR2@SECONDS" in refused.value.hint
    assert "give --time 7 or more" in _refusal_hint({"time_min": 5})
    # Room left after the lead and Slurm's minute, no limit, or submitit's local executor (its own 30 s lead).
    for options in ({"time_min": 7}, {"time_min": 3, "sbatch": {"signal": "USR2@60"}}, {"time_min": 0}):
        assert SubmitOptions(folder="f", **options).time_min == options["time_min"]
    assert SubmitOptions(folder="f", time_min=1, local=True).time_min == 1


@pytest.mark.parametrize(
    ("pairs", "names", "remedy"),
    [
        (["nodes=3"], "--sbatch nodes: `hpc-classify submit` sets it itself", "nodes: use --nodes"),
        (["time=10"], "--sbatch time:", "time: use --time (minutes)"),
        (
            ["ntasks-per-node=4"],
            "--sbatch ntasks-per-node:",
            "ntasks-per-node: leave it out: the job runs one",
        ),
        (["partition=x", "job-name=x"], "--sbatch partition, job-name: ", "partition: use --partition"),
        (["signal=USR1@60"], "--sbatch signal=USR1@60: submitit drains", "or give signal=USR2@SECONDS"),
    ],
)
def test_sbatch_keys_the_job_sets_itself_are_refused(
    pairs: list[str], names: str, remedy: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    """`--sbatch nodes=3` used to beat --nodes (and ntasks-per-node=4 broke the one-task-per-node launcher)."""
    from hpc_classify.cluster import submit

    with pytest.raises(ConfigError, match=rf"^{names}") as refused:
        SubmitOptions(folder="f", sbatch=submit.parse_sbatch_params(pairs))
    assert remedy in refused.value.hint
    others = submit.parse_sbatch_params(["account=abc", "qos=high", "exclusive=user", "mail-type=END"])
    assert SubmitOptions(folder="f", sbatch=others).sbatch == {  # keys the job leaves alone pass through
        "account": "abc",
        "qos": "high",
        "exclusive": "user",
        "mail_type": "END",
    }
    monkeypatch.setattr(submit, "submit", lambda *args: pytest.fail("a job was submitted"))
    sbatch = [arg for pair in pairs for arg in ("--sbatch", pair)]
    argv = ["submit", *sbatch, "--", "--input", str(tmp_path), "--output", str(tmp_path), "--device", "cpu"]
    assert main(argv) == 2
    assert names in capsys.readouterr().err


@pytest.mark.parametrize("device", ["auto", "cuda"])
def test_local_workers_other_than_the_gpus_are_refused_as_on_slurm(monkeypatch, device: str) -> None:
    """`--workers 4` with one GPU used to become one worker without a word (the Slurm path refused it)."""
    monkeypatch.setattr(local, "visible_gpu_count", lambda: 1)
    monkeypatch.setattr(local, "_start_cuda_cluster", lambda *a, **k: pytest.fail("a cluster was started"))
    with pytest.raises(ConfigError, match=r"^--workers 4 on this machine, which has 1 GPU\(s\)") as refused:
        local.start_local_cluster(workers=4, device=device)
    assert "CUDA_VISIBLE_DEVICES" in refused.value.hint and "--device cpu" in refused.value.hint


def test_local_workers_on_several_gpus_without_dask_cuda_are_refused(monkeypatch) -> None:
    """Without dask-cuda one worker would use the first GPU: not the two workers asked for."""
    import builtins

    real_import = builtins.__import__

    def no_dask_cuda(name, *args, **kwargs):
        if name == "dask_cuda":
            raise ImportError("No module named 'dask_cuda'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask_cuda)
    monkeypatch.setattr(local, "visible_gpu_count", lambda: 2)
    monkeypatch.setattr(local, "start_cpu_cluster", lambda *a, **k: pytest.fail("a CPU cluster was started"))
    with pytest.raises(ClusterError, match=r"2 GPU\(s\) visible but dask-cuda is not installed"):
        local.start_local_cluster(workers=2, device="auto")


def test_sbatch_may_say_what_no_flag_can() -> None:
    """A GPU type (gpus-per-node=a100:4) and a longer warning (signal=USR2@900) have no flag: --sbatch
    passes them to the job script, unless --gpus-per-node is given as well."""
    from hpc_classify.cluster import submit

    typed = SubmitOptions(
        folder="f", sbatch=submit.parse_sbatch_params(["gpus-per-node=a100:4", "signal=USR2@900"])
    )
    assert typed.sbatch == {"gpus_per_node": "a100:4", "signal": "USR2@900"}
    with pytest.raises(ConfigError, match=r"^--gpus-per-node 4 and --sbatch gpus-per-node=a100:4 both given"):
        SubmitOptions(folder="f", gpus_per_node=4, sbatch={"gpus_per_node": "a100:4"})


@pytest.mark.parametrize(
    ("death_timeout", "worker_timeout", "given"), [(60.0, 300.0, "300.0"), (400.0, 300.0, "400.0")]
)
def test_workers_get_time_to_start_of_at_least_the_worker_timeout(
    tmp_path: Path, monkeypatch, death_timeout, worker_timeout, given
) -> None:
    """Dask's --death-timeout is also the nanny's deadline for each start of its worker: at 60 s a GPU worker
    slower to start (imports and CUDA on a cold shared file system) exited with "Timed out connecting Nanny"
    and rank 0 failed the job, although --worker-timeout gave the nodes 300 s."""
    for gpus in (0, 2):
        argv = _node(
            tmp_path, monkeypatch, gpus, death_timeout=death_timeout, worker_timeout=worker_timeout
        ).worker_command()
        assert argv[argv.index("--death-timeout") + 1] == given
