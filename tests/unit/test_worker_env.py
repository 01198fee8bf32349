"""worker_env: UCX's settings per process kind, and a value the user set wins."""

from __future__ import annotations

from hpc_classify.worker_env import TORCH_THREADS_ENV, cpu_worker_environment, ucx_environment


def test_cpu_processes_get_the_thread_progress_mode_gpu_nodes_keep_the_default(monkeypatch):
    for name in ("UCXPY_PROGRESS_MODE", "UCXPY_ENABLE_PYTHON_FUTURE", "UCX_WARN_UNUSED_ENV_VARS"):
        monkeypatch.delenv(name, raising=False)
    assert ucx_environment(gpus=False) == {
        "UCX_WARN_UNUSED_ENV_VARS": "n",
        "UCXPY_PROGRESS_MODE": "thread",
        "UCXPY_ENABLE_PYTHON_FUTURE": "1",
    }
    # The progress thread would make a CUDA context on device 0 of a GPU node: distributed-ucxx's default.
    assert ucx_environment(gpus=True) == {"UCX_WARN_UNUSED_ENV_VARS": "n"}
    assert cpu_worker_environment(8, 2) == {**ucx_environment(gpus=False), TORCH_THREADS_ENV: "4"}
    assert cpu_worker_environment(8, 2, gpus_on_node=True) == {
        "UCX_WARN_UNUSED_ENV_VARS": "n",
        TORCH_THREADS_ENV: "4",
    }


def test_a_value_the_user_set_wins(monkeypatch):
    monkeypatch.setenv("UCXPY_PROGRESS_MODE", "polling")
    assert ucx_environment(gpus=False)["UCXPY_PROGRESS_MODE"] == "polling"


def test_jobqueue_gpu_jobs_keep_ucxx_default_progress_cpu_jobs_get_thread_mode(monkeypatch):
    from types import SimpleNamespace

    from hpc_classify.cluster.jobqueue import jobqueue_settings
    from hpc_classify.config import RunConfig

    monkeypatch.delenv("UCXPY_PROGRESS_MODE", raising=False)

    def prologue(device: str) -> list[str]:
        config = RunConfig(
            classifiers=(SimpleNamespace(device=device),),
            inputs=["in"],
            output="out",
            cluster="jobqueue",
            protocol="ucxx",
        )
        return jobqueue_settings(config)["job_script_prologue"]

    assert "export UCXPY_PROGRESS_MODE=thread" in prologue("cpu")
    for device in ("cuda", "auto"):  # auto: the job's node may have GPUs
        assert not [line for line in prologue(device) if "UCXPY_" in line]


def test_closing_a_cluster_has_a_deadline_and_a_hang_is_only_logged(caplog):
    """A local cluster's close was once seen waiting for ever: the finished run must still exit."""
    from hpc_classify.cluster.connect import CLOSE_TIMEOUT, close_quietly

    class Stuck:
        def __init__(self):
            self.timeouts = []

        def close(self, timeout=None):
            self.timeouts.append(timeout)
            raise TimeoutError

    client, cluster = Stuck(), Stuck()
    with caplog.at_level("WARNING", logger="hpc_classify.cluster.connect"):
        close_quietly(client, cluster)
    assert client.timeouts == cluster.timeouts == [CLOSE_TIMEOUT]
    assert caplog.messages == [f"error while closing Stuck: timed out after {CLOSE_TIMEOUT:g} s"] * 2
