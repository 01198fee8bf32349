"""The Slurm launcher end to end on the real test cluster (three emulated nodes), tiny CPU model:
slurm/classify.sbatch over tcp and ucxx, a node whose workers never start, USR1 + requeue and
cancel + resubmit mid-run (every document exactly once), `hpc-classify submit` and `--cluster jobqueue`."""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hpc_classify.cluster.job_layout import JobPaths, default_job_root, jobqueue_log_dir

REPO = Path(__file__).resolve().parents[2]
SBATCH_SCRIPT = REPO / "slurm" / "classify.sbatch"
FAIL_WORKERS_PRELOAD = Path(__file__).with_name("fail_workers_preload.py")


def job_paths(out: Path, job: str, restart: int = 0) -> JobPaths:
    """The launcher's files of Slurm job `job` writing into `out` (the default --job-dir)."""
    return JobPaths.for_job(default_job_root(str(out)), job, restart)


FILES = 9
ROWS = 12
NODES = ("node1", "node2", "node3")
# The driver's last line for a first run that a warning stopped: files processed, failed, remaining.
INTERRUPTED_RUN = re.compile(
    r"(\d+) file\(s\) processed, 0 already done, (\d+) failed, (\d+) remaining; .* exit code 3"
)


def wait_until(ready: Callable[[], bool], timeout: float, what: str, poll_interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(poll_interval)


def wait_for_a_file_in_flight_on_every_node(gate: Path) -> None:
    """Until every node's worker has a file held at the `gated` fixture's gate."""

    def every_node_started() -> bool:
        return all(list(gate.glob(f"started-{node}-*")) for node in NODES)

    wait_until(every_node_started, 240, "a file in flight on each of node1..node3")


def write_corpus(root: Path, files: int = FILES) -> Path:
    """`files` shards of ROWS topic documents each, ids `<shard>-<n>`."""
    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    root.mkdir()
    for shard in range(files):
        texts, _ = synthetic_corpus(ROWS, DOMAIN_LABELS, seed=shard)
        rows = [json.dumps({"id": f"{shard}-{n}", "text": text}) for n, text in enumerate(texts)]
        (root / f"shard-{shard:02d}.jsonl").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "in")


def run_args(corpus: Path, out: Path, model: Path, *extra: str) -> list[str]:
    return ["--input", str(corpus), "--output", str(out), "--model", str(model), "--device", "cpu", *extra]


def markers(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "_markers").glob("*.done.json"))]


def assert_complete_exactly_once(corpus: Path, out: Path, files: int = FILES) -> list[dict]:
    """Every input has its output and marker; every document appears once, in order; no temp file."""
    for source in sorted(corpus.glob("*.jsonl")):
        expected = [json.loads(line)["id"] for line in source.read_text().splitlines()]
        written = [json.loads(line)["id"] for line in (out / source.name).read_text().splitlines()]
        assert written == expected, source.name
        assert (out / "_markers" / f"{source.name}.done.json").exists()
    all_ids = collections.Counter(
        json.loads(line)["id"] for path in out.glob("shard-*.jsonl") for line in path.read_text().splitlines()
    )
    assert len(all_ids) == files * ROWS and set(all_ids.values()) == {1}
    assert [p for p in out.rglob("*") if ".tmp-" in p.name] == []
    found = markers(out)
    assert len(found) == files
    return found


def submit_classify(cluster, workdir: Path, args: list[str], *sbatch: str, env: dict | None = None) -> str:
    return cluster.sbatch(
        ["-N3", "-o", "job-%j.out", *sbatch, str(SBATCH_SCRIPT), *args], cwd=workdir, env=env
    )


def job_log(workdir: Path, job: str) -> str:
    return (workdir / f"job-{job}.out").read_text()


@pytest.mark.parametrize("protocol", ["tcp", "ucxx"])
def test_sbatch_classifies_on_all_three_nodes(
    slurm_cluster, tiny_domain_model, corpus, tmp_path, protocol
) -> None:
    out = tmp_path / "out"
    job = submit_classify(
        slurm_cluster, tmp_path, run_args(corpus, out, tiny_domain_model, "--protocol", protocol)
    )
    assert slurm_cluster.wait_job(job, timeout=240) == "COMPLETED", job_log(tmp_path, job)
    found = assert_complete_exactly_once(corpus, out)
    assert {m["node"] for m in found} == {"node1", "node2", "node3"}
    paths = job_paths(out, job)
    assert json.loads(paths.scheduler_file.read_text())["address"].startswith(f"{protocol}://")
    for node in ("node1", "node2", "node3"):
        assert paths.log(node, "worker").stat().st_size > 0


def test_sbatch_takes_an_input_list_read_on_every_node(slurm_cluster, tiny_domain_model, corpus, tmp_path):
    """`--input-list` through the batch script: every rank reads the list for the run's settings, rank 0 plans
    from it; its entries are relative to the list's own directory, not the job's working directory."""
    out = tmp_path / "out"
    listed = tmp_path / "lists" / "kept.txt"
    listed.parent.mkdir()
    names = sorted(p.name for p in corpus.glob("*.jsonl"))
    listed.write_text("# the shards to classify\n\n" + "".join(f"../in/{name}\n" for name in names))
    args = [
        "--input-list",
        str(listed),
        "--output",
        str(out),
        "--model",
        str(tiny_domain_model),
        "--device",
        "cpu",
    ]
    job = submit_classify(slurm_cluster, tmp_path, args)
    assert slurm_cluster.wait_job(job, timeout=240) == "COMPLETED", job_log(tmp_path, job)
    found = assert_complete_exactly_once(corpus, out)
    assert sorted(m["input_path"] for m in found) == [str(corpus / name) for name in names]


def test_node_whose_workers_never_start_fails_fast_naming_it(
    slurm_cluster, tiny_domain_model, corpus, tmp_path
):
    out = tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model, "--worker-timeout", "90")
    env = {
        "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(FAIL_WORKERS_PRELOAD)]),
        "HPC_CLASSIFY_TEST_FAIL_WORKERS_ON": "node3",
    }
    job = submit_classify(slurm_cluster, tmp_path, args, env=env)
    assert slurm_cluster.wait_job(job, timeout=120) == "FAILED"
    log = job_log(tmp_path, job)
    # Failed as soon as node3's worker exited, not when --worker-timeout ran out ("(not within 90 s)").
    assert "no worker from node3 joined the scheduler (its worker exited)" in log
    assert "Nanny failed to start" in log  # the tail of that node's worker log
    assert "worker disabled on node3" in job_paths(out, job).log("node3", "worker").read_text()
    assert not (out / "_markers").exists() or markers(out) == []


def test_when_rank0_fails_to_start_its_scheduler_the_other_nodes_leave_at_once(
    slurm_cluster, tiny_domain_model, corpus, tmp_path
):
    # Only rank 0 runs a scheduler: a scheduler preload that cannot be imported makes it exit at start. The
    # other nodes, waiting for a scheduler file, see rank 0's shutdown file instead and leave; without it
    # they waited for --worker-timeout (600 s here, past wait_job's 150).
    out = tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model, "--worker-timeout", "600")
    env = {"DASK_DISTRIBUTED__SCHEDULER__PRELOAD": json.dumps(["hpc_classify_no_such_preload"])}
    job = submit_classify(slurm_cluster, tmp_path, args, env=env)
    assert slurm_cluster.wait_job(job, timeout=150) == "FAILED"
    log = job_log(tmp_path, job)
    assert "the scheduler on node1 exited with" in log
    for node in ("node2", "node3"):
        assert (
            f"node {node}: rank 0 ended before this node started its workers; see rank 0's log: exiting"
            in log
        )
    assert not (out / "_markers").exists() or markers(out) == []


def usr1_with_one_file_in_flight_per_node(
    cluster, model: Path, tmp_path: Path, gated, files: int, before_usr1: Callable[[str], None] | None = None
):
    """Submit `files` shards, hold one file per node in flight at the gate, (call `before_usr1(job)`,) send the
    batch script USR1, open the gate once the driver took it, and wait for the job to complete:
    `(job, corpus, out)`."""
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in", files=files), tmp_path / "out"
    args = run_args(corpus, out, model, "--group-bytes", "0", "--tasks-per-worker", "1")
    job = submit_classify(cluster, tmp_path, args, env=env)
    wait_for_a_file_in_flight_on_every_node(gate)
    if before_usr1 is not None:
        before_usr1(job)
    cluster.run(["scancel", "--signal=USR1", "--batch", job])
    wait_until(lambda: "SIGUSR1 received" in job_log(tmp_path, job), 60, "the driver to take the warning")
    (gate / "hold").unlink()
    assert cluster.wait_job(job, timeout=300) == "COMPLETED", job_log(tmp_path, job)
    return job, corpus, out


def test_usr1_mid_run_stops_the_driver_requeues_and_resumes(
    slurm_cluster, tiny_domain_model, tmp_path, gated
):
    """Six files are left when the warning comes: the first run drains its three in flight and exits 3,
    the script requeues, the restart finishes."""
    job, corpus, out = usr1_with_one_file_in_flight_per_node(
        slurm_cluster, tiny_domain_model, tmp_path, gated, FILES
    )
    log = job_log(tmp_path, job)
    first = INTERRUPTED_RUN.search(log)
    assert first is not None, log
    assert tuple(map(int, first.groups())) == (3, 0, FILES - 3), first.group(0)
    assert "requeueing job" in log
    assert slurm_cluster.job_info(job)["Restarts"] == "1", log
    assert job_paths(out, job, restart=1).scheduler_file.exists()  # the restart's own job dir
    assert_complete_exactly_once(corpus, out)


def test_usr1_after_another_nodes_worker_command_died_still_requeues(
    slurm_cluster, tiny_domain_model, tmp_path, gated
):
    """node2's `dask worker` command (nanny and worker, its process group) is SIGKILLed mid-run: the run goes
    on, and at the warning node2's task must not exit with the worker's code (-9: 247), which srun would
    report over rank 0's 3, so that the script would not requeue a job with files left."""

    def kill_node2_worker_command(job: str) -> None:
        (pid,) = {
            int(p)
            for p in subprocess.run(
                ["pgrep", "-f", "--", "--name node2-0"], capture_output=True, text=True
            ).stdout.split()
        }
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        wait_until(
            lambda: "left the cluster" in job_log(tmp_path, job), 120, "the driver to notice node2's worker"
        )

    job, corpus, out = usr1_with_one_file_in_flight_per_node(
        slurm_cluster, tiny_domain_model, tmp_path, gated, FILES, before_usr1=kill_node2_worker_command
    )
    log = job_log(tmp_path, job)
    assert "requeueing job" in log
    assert slurm_cluster.job_info(job)["Restarts"] == "1", log
    assert_complete_exactly_once(corpus, out)


def test_usr1_when_the_files_in_flight_are_the_last_the_run_completes_without_a_requeue(
    slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    """The warning came, but draining the files in flight finished the run: the driver exits 0 and the job
    must not go back to the queue (a requeued job would wait for nodes only to find everything done)."""
    job, corpus, out = usr1_with_one_file_in_flight_per_node(
        slurm_cluster, tiny_domain_model, tmp_path, gated, 3
    )
    log = job_log(tmp_path, job)
    assert "every file had finished (done or failed): the run is complete, not interrupted" in log
    assert "requeueing job" not in log
    assert slurm_cluster.job_info(job)["Restarts"] == "0", log
    assert_complete_exactly_once(corpus, out, files=3)


def test_cancelled_mid_run_then_resubmitted_completes_exactly_once(
    slurm_cluster, tiny_domain_model, corpus, tmp_path, gated
) -> None:
    out = tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model)
    # node1 classifies; node2 and node3 each hold a file at the gate, so the cancel finds the run mid-way (with
    # nothing held, a quick machine finished all 9 files between the first marker and the scancel).
    gate, gate_env = gated
    (gate / "open-node1").touch()
    first = submit_classify(slurm_cluster, tmp_path, args, env=gate_env)
    wait_for_a_file_in_flight_on_every_node(gate)
    wait_until(
        lambda: len(markers(out)) >= 1 if (out / "_markers").exists() else False, 180, "a first marker"
    )
    slurm_cluster.run(["scancel", first])
    assert slurm_cluster.wait_job(first, timeout=60) == "CANCELLED"
    done_before = {m["input_path"] for m in markers(out)}
    assert 0 < len(done_before) < FILES
    second = submit_classify(slurm_cluster, tmp_path, args)
    assert slurm_cluster.wait_job(second, timeout=240) == "COMPLETED", job_log(tmp_path, second)
    assert_complete_exactly_once(corpus, out)
    assert "already done" in job_log(tmp_path, second)


def test_submit_through_submitit(slurm_cluster, tiny_domain_model, corpus, tmp_path) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hpc_classify.cli.main", "submit", "--nodes", "3", "--time", "10"]
    cmd += ["--partition", "debug", "--", *run_args(corpus, out, tiny_domain_model)]
    proc = subprocess.run(
        cmd, env=slurm_cluster.env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "finished" in proc.stdout
    found = assert_complete_exactly_once(corpus, out)
    assert {m["node"] for m in found} == {"node1", "node2", "node3"}


@pytest.mark.parametrize(
    "sizing", [["--workers", "2"], ["--workers", "1", "--max-workers", "3"]], ids=["scale", "adapt"]
)
def test_jobqueue_cluster_completes(slurm_cluster, tiny_domain_model, corpus, tmp_path, sizing) -> None:
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hpc_classify.cli.main", "run", "--cluster", "jobqueue", *sizing]
    cmd += run_args(corpus, out, tiny_domain_model)
    proc = subprocess.run(
        cmd, env=slurm_cluster.env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_complete_exactly_once(corpus, out)
    # The workers were Slurm jobs, and they are gone once the run has ended.
    assert list(Path(jobqueue_log_dir(str(out))).glob("*.out"))
    wait_until(lambda: not slurm_cluster.run(["squeue", "-h"]).stdout.strip(), 60, "worker jobs to end")


def test_jobqueue_worker_jobs_past_their_walltime_are_replaced(
    slurm_cluster, tiny_domain_model, corpus, tmp_path, gated
) -> None:
    """A run longer than a worker job's walltime (one minute here): the worker retires before it and
    another job takes its place, so the held file is taken up again by a new worker and the run completes."""
    gate, gate_env = gated
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hpc_classify.cli.main", "run", "--cluster", "jobqueue", "--workers", "1"]
    cmd += run_args(corpus, out, tiny_domain_model)
    env = {**slurm_cluster.env, **gate_env, "DASK_JOBQUEUE__SLURM__WALLTIME": "00:01:00"}
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:

        def worker_processes() -> set[str]:
            return {p.name.split("-")[2] for p in gate.glob("started-*")}

        # The first worker holds a file; once it has retired, a worker of a new job takes the file up.
        wait_until(lambda: len(worker_processes()) >= 2, 240, "a second worker job to take the held file")
        (gate / "hold").unlink()
        assert proc.wait(timeout=240) == 0, (tmp_path / "run.log").read_text()
    finally:
        proc.kill()
        log.close()
    assert_complete_exactly_once(corpus, out)
    assert len(list(Path(jobqueue_log_dir(str(out))).glob("*.out"))) >= 2
    wait_until(lambda: not slurm_cluster.run(["squeue", "-h"]).stdout.strip(), 60, "worker jobs to end")


def test_jobqueue_worker_job_that_ends_before_its_worker_connects_is_replaced(
    slurm_cluster, tiny_domain_model, corpus, tmp_path
) -> None:
    """The first worker job fails in its prologue, before its worker starts (as a node failure or a crash at
    start would end it): Slurm alone knows it ended. The keeper finds it by squeue and submits another, which
    completes the run (it used to wait without a worker until --worker-wait)."""
    out = tmp_path / "out"
    failed_once = tmp_path / "first-job-failed"
    cmd = [sys.executable, "-m", "hpc_classify.cli.main", "run", "--cluster", "jobqueue", "--workers", "1"]
    cmd += run_args(corpus, out, tiny_domain_model)
    prologue = json.dumps([f"mkdir {failed_once} 2>/dev/null && exit 1"])  # only the first job gets to exit
    env = {**slurm_cluster.env, "DASK_JOBQUEUE__SLURM__JOB_SCRIPT_PROLOGUE": prologue}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert failed_once.is_dir()
    assert "before its worker connected; submitting another" in proc.stderr, proc.stderr
    assert_complete_exactly_once(corpus, out)
    assert len(list(Path(jobqueue_log_dir(str(out))).glob("*.err"))) >= 2
    wait_until(lambda: not slurm_cluster.run(["squeue", "-h"]).stdout.strip(), 60, "worker jobs to end")


def test_jobqueue_run_whose_every_worker_job_fails_at_start_stops_naming_the_output(
    slurm_cluster, tiny_domain_model, corpus, tmp_path
) -> None:
    """Every worker job exits in its prologue (a broken `module load`, say). Once each place of the plan has
    failed START_FAILURES times the run stops with exit 2 naming the last job's output and sacct, although
    --worker-wait 0 would wait for ever for workers that cannot come (it used to: or fail at 120 s with a
    bare "no worker joined"); nothing is classified and no worker job is left."""
    from hpc_classify.cluster.worker_jobs import START_FAILURES

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hpc_classify.cli.main", "run", "--cluster", "jobqueue", "--workers", "1"]
    cmd += run_args(corpus, out, tiny_domain_model, "--worker-wait", "0")
    env = {**slurm_cluster.env, "DASK_JOBQUEUE__SLURM__JOB_SCRIPT_PROLOGUE": json.dumps(["exit 1"])}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = Path(jobqueue_log_dir(str(out)))
    job_errs = sorted(errors.glob("*.err"))
    assert len(job_errs) == START_FAILURES, proc.stderr
    last = max(job_errs, key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    job_id = last.stem.rsplit("-", 1)[1]
    assert "no worker can start" in proc.stderr and str(last) in proc.stderr, proc.stderr
    assert f"sacct -j {job_id}" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(out.glob("_markers/*.done.json"))  # nothing classified
    wait_until(lambda: not slurm_cluster.run(["squeue", "-h"]).stdout.strip(), 60, "worker jobs to end")


def test_jobqueue_waits_for_a_worker_job_held_in_the_queue_longer_than_the_connect_timeout(
    slurm_cluster, tmp_path, monkeypatch
) -> None:
    """A worker job waiting in the queue (held here) longer than the connect timeout: the driver keeps
    waiting (--worker-wait 0) and is connected once the job starts. It used to fail after the timeout with
    "no worker joined the jobqueue cluster" although the job was only queued."""
    import threading

    import dask

    from hpc_classify.cluster.connect import close_quietly, connect
    from hpc_classify.cluster.jobqueue import slurm_cluster_class
    from hpc_classify.config import RunConfig

    slurm_cluster_class()  # dask_jobqueue's config defaults, before dask.config.set (whose exit restores them)
    for name in [n for n in os.environ if n.startswith(("SLURM_", "SBATCH_", "SRUN_"))]:
        monkeypatch.delenv(name)
    for name, value in slurm_cluster.env.items():
        monkeypatch.setenv(name, value)
    config = RunConfig(
        classifiers=["domain"],
        inputs=["in"],
        output=str(tmp_path / "out"),
        cluster="jobqueue",
        workers=1,
        worker_wait=0,
    )
    released: dict = {}

    def release_once_held_past_the_timeout() -> None:
        """From beside the driver (which connects in the main thread: it installs signal handlers)."""

        def held_job() -> str:
            return slurm_cluster.run(["squeue", "-h", "-t", "PENDING", "-o", "%i"]).stdout.strip()

        try:
            wait_until(lambda: bool(held_job()), 120, "the worker job in the queue")
            held_at = time.monotonic()
            job = held_job()
            # Held well past the timeout (2 s) given to connect: the old code failed meanwhile.
            wait_until(lambda: time.monotonic() - held_at > 10, 20, "10 s of the job held")
            released["job"] = job
            slurm_cluster.run(["scontrol", "release", job])
        except BaseException as exc:  # reported below
            released["error"] = exc

    releaser = threading.Thread(target=release_once_held_past_the_timeout)
    releaser.start()
    with dask.config.set({"jobqueue.slurm.job-extra-directives": ["--hold"]}):
        client, cluster = connect(config, timeout=2)
    releaser.join(timeout=60)
    try:
        assert "job" in released, released
        assert len(client.nthreads()) == 1
    finally:
        close_quietly(client, cluster)
    wait_until(lambda: not slurm_cluster.run(["squeue", "-h"]).stdout.strip(), 60, "worker jobs to end")
