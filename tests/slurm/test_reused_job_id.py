"""A Slurm job id that another run used before (slurmctld state reset, two clusters on one file system):
the job finds that run's files in OUT/_jobs/<job id>/ and must take none of them as its own."""

from __future__ import annotations

import json
from pathlib import Path

from test_launcher import (
    assert_complete_exactly_once,
    job_log,
    job_paths,
    run_args,
    submit_classify,
    write_corpus,
)


def test_a_job_ignores_and_sets_aside_what_another_run_with_its_id_left(
    slurm_cluster, tiny_domain_model, tmp_path
) -> None:
    """Held at submission, so that the files of "another run" are in place before any node starts: a
    scheduler file with a dead address, `shutdown`, node3's worker-exit.json, a heartbeat and the ending
    claim, unstamped as a launcher from before tokens wrote them."""
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    job = submit_classify(slurm_cluster, tmp_path, run_args(corpus, out, tiny_domain_model), "--hold")
    paths = job_paths(out, job)
    paths.node_dir("node3").mkdir(parents=True)
    stale = {
        paths.scheduler_file: {"address": "tcp://127.0.0.1:1"},
        paths.shutdown: {"node": "node1", "clean": True},
        paths.exit_record("node3", "worker"): {"node": "node3", "returncode": 1},
        paths.node_workers("node3"): {"workers": 4},
        paths.heartbeat: {"node": "node1", "beat": 9, "time": 0.0},
    }
    for path, data in stale.items():
        path.write_text(json.dumps(data))
    paths.ending_claim.touch()
    slurm_cluster.run(["scontrol", "release", job])

    assert slurm_cluster.wait_job(job, timeout=240) == "COMPLETED", job_log(tmp_path, job)
    found = assert_complete_exactly_once(corpus, out)
    assert {m["node"] for m in found} == {"node1", "node2", "node3"}  # node3 was not taken as failed
    log = job_log(tmp_path, job)
    assert "belonged to another run of this job id (no token): moved to" in log
    (aside,) = Path(out / "_jobs").glob(f"{job}.replaced-*")
    assert json.loads((aside / "scheduler.json").read_text()) == stale[paths.scheduler_file]
    token = json.loads(paths.scheduler_file.read_text())["incarnation"]
    assert f":{job}.0:" in token
    assert json.loads(paths.incarnation_file.read_text())["incarnation"] == token
    assert json.loads(paths.shutdown.read_text())["incarnation"] == token  # this run's rank 0's
