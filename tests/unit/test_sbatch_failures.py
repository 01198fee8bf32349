"""A worker job whose submission failed (`sbatch` timing out on a busy slurmctld), on dask-jobqueue's own
SLURMCluster: SpecCluster keeps it with no job id and never submits that place again; the keeper
(cluster/worker_jobs.py) submits it again. The keeper's bookkeeping with stand-ins is in test_worker_jobs.py."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import time

import pytest

from hpc_classify.cluster import worker_jobs
from hpc_classify.cluster.worker_jobs import keep_worker_jobs

TIMED_OUT = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"


SBATCH = f"""#!/bin/sh
# Fails the first $FAIL_FIRST submissions as a busy slurmctld does; queues the others (listed by squeue).
d="$(dirname "$0")"; n=$(ls "$d"/calls | wc -l); touch "$d/calls/$n"
if [ "$n" -lt "$FAIL_FIRST" ]; then echo "{TIMED_OUT}" >&2; exit 1; fi
sleep 1  # a slow answer: the keeper looks meanwhile, and must not take it for a failure
echo "$((1000 + n)) PENDING" >> "$d/jobs"; echo "Submitted batch job $((1000 + n))"
"""


def test_a_slurm_cluster_submits_again_where_sbatch_failed(tmp_path, monkeypatch):
    """dask-jobqueue's own SLURMCluster, with an sbatch on PATH that fails twice: its place is submitted
    again until a job is queued (no Slurm needed: no worker ever connects)."""
    if (
        importlib.util.find_spec("dask_jobqueue") is None
    ):  # not importorskip: importing it sets SIGINT's handler
        pytest.skip("dask_jobqueue is not installed")
    bin_dir = tmp_path / "bin"
    (bin_dir / "calls").mkdir(parents=True)
    for name, text in {
        "sbatch": SBATCH,
        "squeue": '#!/bin/sh\ncat "$(dirname "$0")/jobs" 2>/dev/null; exit 0\n',
        "scancel": "#!/bin/sh\nexit 0\n",
    }.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAIL_FIRST", "2")
    monkeypatch.setattr(worker_jobs, "REPLACE_INTERVAL", 0.2)
    import dask

    with dask.config.set({"distributed.deploy.lost-worker-timeout": "15s"}):  # restored on exit
        asyncio.run(_slurm_cluster(tmp_path, bin_dir))
        # Only the keeper forgets a job whose worker left (its nanny may take long to restart it).
        assert dask.config.get("distributed.deploy.lost-worker-timeout") == worker_jobs.LOST_WORKER_TIMEOUT


async def _slurm_cluster(tmp_path, bin_dir):
    from hpc_classify.cluster.jobqueue import slurm_cluster_class

    SLURMCluster = slurm_cluster_class()  # noqa: N806 - a class; imported without setting SIGINT's handler

    async with SLURMCluster(
        cores=1,
        memory="1GB",
        processes=1,
        log_directory=str(tmp_path / "logs"),
        scheduler_options={"dashboard_address": ":0", "host": "127.0.0.1"},
        asynchronous=True,
    ) as cluster:
        keeper = keep_worker_jobs(cluster)
        cluster.scale(jobs=1)
        deadline = time.monotonic() + 20
        while not (list(cluster.workers) and all(job.job_id for job in cluster.workers.values())):
            assert time.monotonic() < deadline, f"no job queued: {cluster.workers}"
            await asyncio.sleep(0.1)  # polls the cluster's state, not a wait for a guessed time
        assert list(cluster.workers.values())[0].job_id == "1002"  # the third sbatch, after two failures
        assert len(list((bin_dir / "calls").iterdir())) == 3  # none while the third was being submitted
        assert keeper.start_failures == {list(cluster.workers)[0]: 2}
