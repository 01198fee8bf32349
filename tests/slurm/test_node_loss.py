"""Losing a node of a Slurm job, for real (#12 item 2): on the emulated three-node cluster a node's slurmd
and every process of the job on it are SIGKILLed while each node has a file in flight.

- a node other than rank 0: the run finishes on the other two (exit 0), naming the lost worker;
- rank 0's node (scheduler, driver, batch script), once the run made progress: the other nodes stop when its
  heartbeat is --death-timeout old, exit 3 and end the job; a resubmission (or the requeued job, once the node is
  back) finishes the run;
- rank 0's driver killed before the run finished anything (as an OOM kill while it plans would, at every start):
  the other nodes exit 5 and cancel the job instead of requeueing it for ever.

Each ends with every document exactly once and no partial or temp file. The files are held at a gate
(tests/slurm/gate_preload.py) until the node is dead, so the lost node always had work in flight.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from test_launcher import (
    FILES,
    assert_complete_exactly_once,
    job_log,
    job_paths,
    markers,
    run_args,
    submit_classify,
    wait_for_a_file_in_flight_on_every_node,
    wait_until,
    write_corpus,
)


def _program(pid: int) -> str:
    """The name of the program process `pid` runs ("" once it is gone)."""
    try:
        return Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()).name
    except OSError:
        return ""


def summary(out: Path) -> dict:
    return json.loads((out / "_summary.json").read_text())


def test_losing_a_node_other_than_rank0_the_run_finishes_on_the_other_two(
    fragile_slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    cluster = fragile_slurm_cluster
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    job = submit_classify(cluster, tmp_path, run_args(corpus, out, tiny_domain_model), env=env)
    wait_for_a_file_in_flight_on_every_node(gate)
    assert cluster.kill_node("node3")
    wait_until(lambda: "left the cluster" in job_log(tmp_path, job), 120, "the driver to notice node3's loss")
    (gate / "hold").unlink()

    state = cluster.wait_job(job, timeout=300)
    log = job_log(tmp_path, job)
    assert state == "COMPLETED", log
    assert cluster.job_info(job)["NodeList"] == "node[1-2]", "Slurm shrank the job (--no-kill)"
    found = assert_complete_exactly_once(corpus, out)
    assert {m["node"] for m in found} == {"node1", "node2"}
    s = summary(out)
    assert s["exit_code"] == 0 and s["files_processed"] == FILES
    assert [w.split(" on ")[0] for w in s["workers_lost"]] == ["node3-0"]
    assert "worker node3-0 on" in log and "left the cluster (its node lost, or the process died)" in log
    assert f"its log: {job_paths(out, job).log('node3', 'worker')}" in log
    assert "exit code 0" in log


def _node_exits(out: Path, job: str) -> dict[str, dict]:
    found = {}
    for node in ("node2", "node3"):
        path = job_paths(out, job).exit_record(node, "node")
        if path.exists():
            found[node] = json.loads(path.read_text())
    return found


def _heartbeat_finished(out: Path, job: str) -> int:
    """What rank 0's heartbeat says its driver has finished (0 while none is readable)."""
    try:
        return int(json.loads(job_paths(out, job).heartbeat.read_text()).get("finished", 0))
    except (OSError, ValueError):  # not written yet, or caught half-written
        return 0


def _kill_rank0_and_check_the_others_stop(cluster, gate: Path, out: Path, job: str) -> dict:
    """Kill node1 mid-run, once the run made progress (a requeue is only for a run that did); the first of
    node2/node3 to find rank 0's heartbeat stale stops its workers, exits 3 and ends the job (which also ends
    the other one). Returns that node's exit record."""
    wait_for_a_file_in_flight_on_every_node(gate)
    (gate / "open-node2").touch()  # node2's files go on; node1's and node3's stay in flight
    wait_until(
        lambda: _heartbeat_finished(out, job) >= 1, 120, "rank 0's heartbeat to say a file was finished"
    )
    assert cluster.kill_node("node1")
    (gate / "hold").unlink()  # node2's and node3's files in flight may still finish (atomically)
    # What made them stop is in each record's reason (rank 0's heartbeat unchanged for --death-timeout).
    wait_until(lambda: _node_exits(out, job), 180, "node2 or node3 to stop after rank 0's loss")
    wait_until(lambda: any("job" in r for r in _node_exits(out, job).values()), 60, "the job to be ended")
    exits = _node_exits(out, job)
    enders = [r for r in exits.values() if "job" in r]
    assert len(enders) == 1, exits  # only one node ends the job (the ending-after-rank0-loss claim)
    for node, record in exits.items():
        assert record["exit_code"] == 3, record
        assert record["reason"].startswith(f"node {node}: rank 0 (node1) and its scheduler at tcp://")
        assert "unchanged for 20 s" in record["reason"] and "exiting with 3 (resumable)" in record["reason"]
        assert f"Rank 0's logs: {job_paths(out, job).node_dir('node1')}" in record["reason"]
    # No temp-file check here: the ender may be writing its last report. assert_complete_exactly_once
    # checks the whole output tree, _jobs/ included, once the run is over.
    return enders[0]


def test_losing_rank0_node_ends_the_job_with_code_3_and_a_resubmission_resumes(
    fragile_slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    cluster = fragile_slurm_cluster
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model, "--death-timeout", "20")
    first = submit_classify(cluster, tmp_path, args, "--no-requeue", env=env)
    ender = _kill_rank0_and_check_the_others_stop(cluster, gate, out, first)
    assert cluster.wait_job(first, timeout=120) == "CANCELLED", ender
    # Submitted with --no-requeue: cancelled. The record says so before the scancel, and again after it
    # if the scancel did not end its writer first.
    assert ender["job"] in (
        f"cancelling job {first} (scancel; it was submitted with --no-requeue): "
        "submit the same command again to resume",
        f"cancelled job {first}; submit the same command again to resume",
    )
    assert 1 <= len(markers(out)) < FILES

    # node1 is still down: resubmit the same command on the two nodes left.
    second = submit_classify(cluster, tmp_path, args, "-N2")
    assert cluster.wait_job(second, timeout=300) == "COMPLETED", job_log(tmp_path, second)
    assert_complete_exactly_once(corpus, out)
    assert summary(out)["exit_code"] == 0
    assert "exit code 0" in job_log(tmp_path, second)


def test_losing_rank0_node_requeues_the_job_which_resumes_once_the_node_is_back(
    fragile_slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    cluster = fragile_slurm_cluster
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model, "--death-timeout", "20")
    job = submit_classify(cluster, tmp_path, args, env=env)  # the script's default: --requeue
    ender = _kill_rank0_and_check_the_others_stop(cluster, gate, out, job)
    wait_until(lambda: cluster.job_info(job).get("Restarts") == "1", 120, "the job to be requeued")
    # node1 is gone: the requeued job waits for enough nodes.
    wait_until(lambda: cluster.job_info(job).get("JobState") == "PENDING", 120, "the requeued job to pend")
    # Requeued once: by this node, or by Slurm itself when node1 was declared DOWN at about the same time
    # (then this node's requeue is not sent: it would end the restarted instance).
    assert ender["job"].startswith(
        (
            f"requeueing job {job} (scontrol requeue)",
            f"requeued job {job}",
            f"job {job} was requeued already",
            f"job {job} is PENDING already",
        )
    ), ender
    # A lost node comes back (rebooted) only after Slurm has declared it DOWN; restarted sooner, its new
    # slurmd would meet a job Slurm still places on it.
    wait_until(lambda: cluster.node_state("node1").startswith("down"), 120, "Slurm to declare node1 DOWN")
    cluster.restart_node("node1")  # the requeued job can start again
    assert cluster.wait_job(job, timeout=300) == "COMPLETED", job_log(tmp_path, job)
    assert job_paths(out, job, restart=1).scheduler_file.exists()  # the restart's own job dir
    assert_complete_exactly_once(corpus, out)
    assert summary(out)["exit_code"] == 0


def test_a_job_suspended_for_longer_than_the_death_timeout_is_not_a_loss(
    slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    """`scontrol suspend` (as preemption by suspension does) stops every process of the job, rank 0's
    heartbeat writer included, while the clocks run on. Resumed, the other nodes must not take rank 0 for
    lost: the job completes without a requeue. Here node2 and node3 go on before the rest, until their
    watchers have looked (as when rank 0's next heartbeat is late to show on a shared file system): they find
    it unchanged for the whole suspension, longer than --death-timeout."""
    cluster = slurm_cluster
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model, "--death-timeout", "20")
    job = submit_classify(cluster, tmp_path, args, env=env)
    wait_for_a_file_in_flight_on_every_node(gate)
    cluster.run(["scontrol", "suspend", job])
    wait_until(lambda: cluster.job_info(job).get("JobState") == "SUSPENDED", 30, "the job to be suspended")
    time.sleep(30)  # the suspension itself, longer than --death-timeout: the scenario, not a wait for a state
    looked = "(job suspended?): not counted as rank 0's silence"
    looked_before = job_log(tmp_path, job).count(looked)
    # srun on node1 goes on too: it relays node2's and node3's output into the job's log. Rank 0 (driver,
    # scheduler, heartbeat writer) stays stopped.
    relays = [pid for pid in cluster.node_processes("node1") if _program(pid) == "srun"]
    assert relays, "no srun process found on node1"
    for pid in cluster.node_processes("node2") + cluster.node_processes("node3") + relays:
        os.kill(pid, signal.SIGCONT)
    # Until both watchers have looked while rank 0 is still stopped: each says so at its first look.
    wait_until(
        lambda: job_log(tmp_path, job).count(looked) >= looked_before + 2,
        60,
        "node2's and node3's watchers to look at the heartbeat after the suspension",
    )
    cluster.run(["scontrol", "resume", job])
    (gate / "hold").unlink()
    assert cluster.wait_job(job, timeout=300) == "COMPLETED", job_log(tmp_path, job)
    assert cluster.job_info(job)["Restarts"] == "0", job_log(tmp_path, job)
    assert _node_exits(out, job) == {}  # no node stopped for rank 0's silence
    assert_complete_exactly_once(corpus, out)
    assert looked in job_log(tmp_path, job)


def _rank0_entry(cluster) -> int:
    """The pid of rank 0's `hpc-classify node` process (driver, heartbeat) on node1: not srun's."""
    found = []
    for pid in cluster.node_processes("node1"):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1].endswith(b"hpc-classify") and argv[2] == b"node":
            found.append(pid)
    assert len(found) == 1, found
    return found[0]


def test_rank0s_driver_killed_before_any_progress_ends_the_job_without_a_requeue(
    slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    """As an OOM kill of rank 0's driver while it plans a large corpus would, at every start: requeued, the job
    would die the same way for ever. node1 itself lives on (Slurm does not requeue the job for it)."""
    cluster = slurm_cluster
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    job = submit_classify(
        cluster, tmp_path, run_args(corpus, out, tiny_domain_model, "--death-timeout", "20"), env=env
    )
    wait_for_a_file_in_flight_on_every_node(gate)  # held: nothing is finished
    assert _heartbeat_finished(out, job) == 0
    os.kill(_rank0_entry(cluster), signal.SIGKILL)
    wait_until(lambda: any("job" in r for r in _node_exits(out, job).values()), 180, "the job to be ended")
    assert cluster.wait_job(job, timeout=120) == "CANCELLED", job_log(tmp_path, job)
    assert cluster.job_info(job)["Restarts"] == "0"
    exits = _node_exits(out, job)
    enders = [r for r in exits.values() if "job" in r]
    assert len(enders) == 1, exits
    assert enders[0]["job"].startswith(
        (
            f"cancelling job {job} (scancel) instead of requeueing it: rank 0 was lost before",
            f"cancelled job {job}",
        )
    ), enders[0]
    for node, record in exits.items():
        assert record["exit_code"] == 5, record
        assert record["reason"].startswith(f"node {node}: rank 0 (node1) and its scheduler at tcp://")
        assert (
            "before its driver had finished a single file or piece in this run of the job" in record["reason"]
        )
        assert "not requeued" in record["reason"]
    assert markers(out) == []
