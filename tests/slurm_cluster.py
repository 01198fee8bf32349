"""A real three-node Slurm cluster on this one machine, for the test suite and for manual use.

munged, slurmctld and one `slurmd -N nodeN` per emulated node run as root from a private state
directory, on TCP ports picked free at start, so two clusters on one machine never collide.
Teardown always happens (context manager, atexit, pytest finalizer) and leaves no daemon behind.

    python tests/slurm_cluster.py up DIR     # start; prints `export SLURM_CONF=...`
    python tests/slurm_cluster.py down DIR   # stop a cluster started with `up`
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DAEMON_BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo", "scontrol")
TERMINAL_JOB_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)


class SlurmClusterError(RuntimeError):
    """The test cluster did not start, or a job did not finish in time; carries the daemons' log tails."""


def missing_binaries() -> list[str]:
    """The Slurm/munge programs this harness needs that are not on PATH (empty when all are present)."""
    search = os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin"
    return [name for name in DAEMON_BINARIES if shutil.which(name, path=search) is None]


def free_tcp_ports(count: int) -> list[int]:
    """`count` distinct TCP ports that are free now (kernel-chosen, so parallel clusters differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"({path} not readable)"
    return "\n".join(text.splitlines()[-lines:]) or f"({path} is empty)"


def _which(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + os.pathsep + "/usr/sbin:/sbin")
    if found is None:
        raise SlurmClusterError(f"{name} not found; HINT: apt-get install -y slurm-wlm munge")
    return found


def _pid_alive(pid: int) -> bool:
    """True while `pid` runs (a zombie counts as gone: it only waits to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state not in "ZX"


class SlurmCluster:
    """A Slurm cluster living in `state_dir`. Use as a context manager, or `start()`/`stop()`."""

    def __init__(
        self, state_dir: str | Path, nodes: int = 3, cpus_per_node: int = 2, slurmd_timeout: int = 60
    ):
        self.state_dir = Path(state_dir).resolve()
        # Seconds before slurmctld declares a silent node DOWN (and fails or shrinks its jobs).
        self.slurmd_timeout = slurmd_timeout
        self.node_names = tuple(f"node{i}" for i in range(1, nodes + 1))
        self.cpus_per_node = cpus_per_node
        self.conf_path = self.state_dir / "etc" / "slurm.conf"
        self.munge_socket = self.state_dir / "munge" / "munge.socket"
        self._atexit_registered = False
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.env = self._job_env()

    # ----- environment and paths -------------------------------------------------------------
    def _job_env(self) -> dict[str, str]:
        """The caller's environment with SLURM_CONF set; any outer Slurm job's SLURM_* variables are
        dropped so commands talk only to this cluster. The venv's bin dir leads PATH so jobs find
        `hpc-classify` through sbatch's default --export=ALL."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_", "SRUN_"))}
        env["SLURM_CONF"] = str(self.conf_path)
        venv_bin = str(Path(sys.executable).parent)
        env["PATH"] = os.pathsep.join([venv_bin, env.get("PATH", ""), "/usr/sbin", "/sbin"])
        return env

    def pid_files(self) -> dict[str, Path]:
        files = {"munged": self.state_dir / "munge" / "munged.pid"}
        files["slurmctld"] = self.state_dir / "run" / "slurmctld.pid"
        for name in self.node_names:
            files[f"slurmd-{name}"] = self.state_dir / "run" / f"slurmd-{name}.pid"
        return files

    def log_files(self) -> dict[str, Path]:
        logs = {"munged": self.state_dir / "munge" / "munged.log"}
        logs["slurmctld"] = self.state_dir / "log" / "slurmctld.log"
        for name in self.node_names:
            logs[f"slurmd-{name}"] = self.node_log_path(name)
        return logs

    def node_log_path(self, name: str) -> Path:
        return self.state_dir / "log" / f"slurmd-{name}.log"

    def node_log(self, name: str) -> str:
        """The full slurmd log of node `name` (empty if it has not been written yet)."""
        path = self.node_log_path(name)
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tails(self, lines: int = 15) -> str:
        parts = [f"--- {label} ({path}) ---\n{tail(path, lines)}" for label, path in self.log_files().items()]
        for stderr in sorted((self.state_dir / "log").glob("*.stderr")):
            if stderr.stat().st_size:
                parts.append(f"--- {stderr.name} ---\n{tail(stderr, lines)}")
        return "\n".join(parts)

    # ----- configuration ---------------------------------------------------------------------
    def write_config(self) -> None:
        for sub in ("etc", "munge", "run", "log", "state", "spool"):
            (self.state_dir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
        ctld_port, *node_ports = free_tcp_ports(1 + len(self.node_names))
        host = socket.gethostname().split(".")[0]
        d = self.state_dir
        node_lines = [
            f"NodeName={name} NodeHostname={host} NodeAddr=127.0.0.1 Port={port} "
            f"CPUs={self.cpus_per_node} RealMemory=6000 State=UNKNOWN"
            for name, port in zip(self.node_names, node_ports, strict=True)
        ]
        conf = f"""\
# Written by tests/slurm_cluster.py: a throwaway {len(self.node_names)}-node cluster on one machine.
ClusterName=hpctest{ctld_port}
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Our own munged. A requeued job waits cred_expire+1 s before it restarts: keep it short for tests.
AuthInfo=socket={self.munge_socket},cred_expire=10
StateSaveLocation={d}/state
SlurmctldPidFile={d}/run/slurmctld.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdSpoolDir={d}/spool/%n
SlurmdPidFile={d}/run/slurmd-%n.pid
SlurmdLogFile={d}/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
# Cores only: memory is not consumed, so several small jobs (jobqueue workers) can share a node.
SelectTypeParameters=CR_Core
# Nodes with fewer real resources than configured (CI machines) are not drained.
SlurmdParameters=config_overrides
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
JobRequeue=1
KillWait=2
MinJobAge=3600
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout={self.slurmd_timeout}
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_interval=2,sched_min_interval=0,bf_interval=1
{chr(10).join(node_lines)}
PartitionName=debug Nodes={",".join(self.node_names)} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
        self.conf_path.write_text(conf)
        (self.state_dir / "cluster.json").write_text(json.dumps({"nodes": list(self.node_names)}))

    def _make_munge_key(self) -> None:
        key = self.state_dir / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
        key.chmod(0o400)

    # ----- start -----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0, *, teardown_at_exit: bool = True) -> SlurmCluster:
        """Write the config and start every daemon; return once all nodes are idle in `sinfo`."""
        if teardown_at_exit and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        try:
            self.write_config()
            self._make_munge_key()
            self._start_munged(timeout)
            self._spawn("slurmctld", [_which("slurmctld"), "-D", "-f", str(self.conf_path)])
            self._poll(
                lambda: self.run(["scontrol", "ping"], check=False).stdout.count("UP") > 0,
                timeout,
                "slurmctld did not answer `scontrol ping`",
            )
            for name in self.node_names:
                self._spawn(f"slurmd-{name}", [_which("slurmd"), "-D", "-N", name, "-f", str(self.conf_path)])
            self.wait_nodes_idle(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, label: str, argv: list[str]) -> None:
        stderr = open(self.state_dir / "log" / f"{label}.stderr", "wb")  # noqa: SIM115 - handed to the child
        with stderr:
            # New session: Ctrl-C in the test's terminal reaches the harness, which tears down in order.
            self._procs[label] = subprocess.Popen(
                argv,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=stderr,
                start_new_session=True,
                cwd=self.state_dir,
            )

    def _start_munged(self, timeout: float) -> None:
        m = self.state_dir / "munge"
        self._spawn(
            "munged",
            [
                _which("munged"),
                "-F",
                "--force",
                f"--socket={self.munge_socket}",
                f"--key-file={m / 'munge.key'}",
                f"--pid-file={m / 'munged.pid'}",
                f"--log-file={m / 'munged.log'}",
                f"--seed-file={m / 'munged.seed'}",
            ],
        )
        self._poll(self.munge_socket.exists, timeout, "munged did not create its socket")

    def wait_nodes_idle(self, timeout: float = 60.0) -> None:
        """Poll `sinfo` until every node reports idle."""

        def all_idle() -> bool:
            out = self.run(["sinfo", "-h", "-N", "-o", "%N %t"], check=False).stdout
            states = dict(line.split() for line in out.splitlines() if len(line.split()) == 2)
            return all(states.get(name) == "idle" for name in self.node_names)

        self._poll(all_idle, timeout, "not every node became idle in sinfo")

    def _poll(self, ready, timeout: float, what: str, poll_interval: float = 0.2) -> None:
        """Poll `ready()` until true; fail at the deadline, or at once if a daemon we started exited."""
        deadline = time.monotonic() + timeout
        while not ready():
            exited = {
                label: proc.returncode for label, proc in self._procs.items() if proc.poll() is not None
            }
            if exited or time.monotonic() > deadline:
                reason = f"daemon(s) exited: {exited}" if exited else f"within {timeout:.0f} s"
                raise SlurmClusterError(f"{what} ({reason})\n{self.log_tails()}")
            time.sleep(poll_interval)

    # ----- commands and jobs -----------------------------------------------------------------
    def run(
        self,
        cmd: Sequence[str] | str,
        *,
        check: bool = True,
        timeout: float = 60.0,
        cwd: str | Path | None = None,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run a command (argv list, or a shell string) against this cluster (extra `env` on top of `.env`)."""
        proc = subprocess.run(
            cmd,
            shell=isinstance(cmd, str),
            env={**self.env, **(env or {})},
            cwd=cwd,
            text=True,
            capture_output=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise SlurmClusterError(
                f"{cmd!r} exited {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
            )
        return proc

    def sbatch(
        self, args: Sequence[str], *, cwd: str | Path | None = None, env: dict[str, str] | None = None
    ) -> str:
        """Submit a batch job (extra `env` variables on top of `.env`); return its id."""
        out = self.run(["sbatch", "--parsable", *args], cwd=cwd, env=env).stdout.strip()
        return out.split(";")[0]

    def job_info(self, job_id: str) -> dict[str, str]:
        """`scontrol show job` as a dict (empty if the job is unknown)."""
        out = self.run(["scontrol", "show", "job", "-o", str(job_id)], check=False).stdout
        return dict(re.findall(r"(\w+)=(\S*)", out))

    def wait_job(self, job_id: str, timeout: float = 120.0, poll_interval: float = 0.5) -> str:
        """Wait until the job reaches a terminal state and return it (COMPLETED, FAILED, ...)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.job_info(job_id).get("JobState", "")
            if state in TERMINAL_JOB_STATES:
                return state
            if time.monotonic() > deadline:
                raise SlurmClusterError(
                    f"job {job_id} still {state or 'unknown'} after {timeout:.0f} s\n{self.log_tails()}"
                )
            time.sleep(poll_interval)

    # ----- node faults -----------------------------------------------------------------------
    def node_processes(self, name: str) -> list[int]:
        """Pids of this cluster's job processes on node `name` (their environment has
        SLURMD_NODENAME=name), plus the slurmstepd daemons that are their parents."""
        needle = f"SLURMD_NODENAME={name}\0".encode()
        tasks = set()
        for pid in self.job_processes():
            try:
                if needle in Path(f"/proc/{pid}/environ").read_bytes():
                    tasks.add(pid)
            except OSError:
                continue
        stepds = set()
        for pid in tasks:
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[1])
                if Path(f"/proc/{parent}/cmdline").read_bytes().startswith(b"slurmstepd"):
                    stepds.add(parent)
        return sorted(tasks | stepds)

    def kill_node(self, name: str, timeout: float = 30.0) -> list[int]:
        """Emulate the loss of node `name`: SIGKILL its slurmd, then every job process on it (tasks,
        their children, their slurmstepd) until none is left. slurmctld notices only when the node stops
        answering (SlurmdTimeout). Returns the pids killed.

        A lost node's processes stop all at once. Killed one by one, they can react to each other's
        deaths in between, as no process of a lost node can: srun's shepherd (a child srun forks, see
        Slurm's srun_job.c) cancels the step on every node when srun dies before it, and the batch
        step's slurmstepd ends the whole job when the batch script dies before it. See _kill_together."""
        slurmd = self._pids().get(f"slurmd-{name}")
        killed = [slurmd] if slurmd else []
        if slurmd:
            with contextlib.suppress(ProcessLookupError):
                os.kill(slurmd, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while pids := self.node_processes(name):  # a task may fork while we kill: look again
            _kill_together(pids)
            killed += pids
            if time.monotonic() > deadline:
                raise SlurmClusterError(f"processes of {name} survived SIGKILL: {pids}")
            time.sleep(0.1)
        proc = self._procs.pop(f"slurmd-{name}", None)  # so that _poll does not count it as a failure
        if proc is not None:
            proc.wait()
        return killed

    def rpcs_to_slurmds(self) -> int:
        """How many RPCs to slurmds slurmctld has queued or is sending now (sdiag's "Agent queue size"
        plus "Agent count", the agents in flight)."""
        out = self.run(["sdiag"]).stdout
        counts = [
            re.search(rf"^\s*{label}:\s*(\d+)", out, re.M) for label in ("Agent queue size", "Agent count")
        ]
        if None in counts:
            raise SlurmClusterError(f"sdiag printed no agent queue size or agent count:\n{out}")
        return sum(int(found.group(1)) for found in counts)

    def node_state(self, name: str) -> str:
        """The node's state in sinfo (`idle`, `mix`, `alloc`, `down*`, ...), empty if unknown."""
        return self.run(["sinfo", "-h", "-n", name, "-o", "%t"], check=False).stdout.strip()

    def restart_node(self, name: str, timeout: float = 120.0) -> None:
        """Start node `name`'s slurmd again (after `kill_node`) and wait until it is usable:
        ReturnToService=2 returns a DOWN node to service when its slurmd registers.

        First slurmctld must have no RPC queued or in flight. It sends a requeue's terminate to every node
        of the job, and to a dead node that agent keeps trying for about MessageTimeout (11 s here): when
        node1 was declared DOWN within that time and restarted at once, the terminate reached the new
        slurmd and ended the job just restarted there under the same ID, "DUE TO JOB REQUEUE" (CI,
        2026-12-03 and 2026-12-04; the slurmctld log with DebugFlags=Agent shows the agent ending 0.4 s
        before DOWN in a passing run). A real node reboots for minutes; the wait stands for that.
        Once the node is DOWN, slurmctld starts no new RPC to it, so one reading of zero suffices."""
        self._poll(lambda: self.rpcs_to_slurmds() == 0, timeout, f"slurmctld's RPCs in flight (to {name})")
        self._spawn(f"slurmd-{name}", [_which("slurmd"), "-D", "-N", name, "-f", str(self.conf_path)])
        self._poll(
            lambda: self.node_state(name) in ("idle", "mix", "alloc"), timeout, f"{name} did not come back"
        )

    # ----- teardown --------------------------------------------------------------------------
    def _pids(self) -> dict[str, int | None]:
        pids: dict[str, int | None] = {}
        for label, path in self.pid_files().items():
            try:
                pids[label] = int(path.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pids[label] = None
        return pids

    def _no_active_jobs(self) -> bool:
        out = self.run(["squeue", "-h", "-t", "running,completing,configuring,suspended"], check=False)
        return out.returncode == 0 and not out.stdout.strip()

    def job_processes(self) -> list[int]:
        """Pids of processes (job steps) whose environment names this cluster's SLURM_CONF."""
        needle = f"SLURM_CONF={self.conf_path}\0".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if needle in (entry / "environ").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    continue
        return found

    def stop(self, timeout: float = 30.0, poll_interval: float = 0.2) -> None:
        """Cancel jobs, `scontrol shutdown`, then kill whatever is left by pid. Idempotent."""
        if self._atexit_registered:
            atexit.unregister(self.stop)
            self._atexit_registered = False
        pids = self._pids()
        ctld = pids.get("slurmctld")
        if self.conf_path.exists() and ctld and _pid_alive(ctld):
            self.run(["scancel", "--user", str(os.getuid())], check=False, timeout=15)
            with contextlib.suppress(SlurmClusterError):
                self._poll(self._no_active_jobs, timeout / 2, "jobs did not end after scancel")
            self.run(["scontrol", "shutdown"], check=False, timeout=15)
        munged = {pids.pop("munged", None)} | {
            proc.pid for lbl, proc in self._procs.items() if lbl == "munged"
        }
        daemons = {pid for pid in pids.values() if pid}
        daemons |= {proc.pid for lbl, proc in self._procs.items() if lbl != "munged"}
        # `scontrol shutdown` stops slurmctld and the slurmds; whatever is left gets SIGTERM, then
        # SIGKILL. Job steps that outlived their slurmd (none normally) are killed outright; munged last.
        _wait_gone(sorted(daemons), timeout, poll_interval, grace=timeout / 2)
        _wait_gone(self.job_processes(), timeout, poll_interval, first_signal=signal.SIGKILL)
        _wait_gone(sorted(pid for pid in munged if pid), timeout, poll_interval)
        for proc in self._procs.values():
            proc.wait()
        self._procs.clear()

    def __enter__(self) -> SlurmCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _kill_together(pids: list[int]) -> None:
    """SIGKILL `pids` so that none of them can see another one die: the slurmstepds first (nothing of
    ours watches them), then each process group in a single kill(2) (srun and its shepherd share the
    batch script's group), the older groups first (a parent watches its children). A group with members
    outside `pids` is killed member by member."""
    stepds = [pid for pid in pids if _cmdline(pid).startswith(b"slurmstepd")]
    groups: dict[int, list[int]] = {}
    for pid in sorted(set(pids) - set(stepds)):
        with contextlib.suppress(ProcessLookupError):
            groups.setdefault(os.getpgid(pid), []).append(pid)
    for pid in stepds:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    members = _process_groups()
    for pgid, group in sorted(groups.items()):
        with contextlib.suppress(ProcessLookupError):
            if members.get(pgid, set()) <= set(pids):
                os.killpg(pgid, signal.SIGKILL)
                continue
        for pid in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _process_groups() -> dict[int, set[int]]:
    """Every process group of this machine: pgid -> its members' pids."""
    groups: dict[int, set[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(ProcessLookupError):
                groups.setdefault(os.getpgid(int(entry.name)), set()).add(int(entry.name))
    return groups


def _wait_gone(
    pids: list[int],
    timeout: float,
    poll_interval: float,
    first_signal: signal.Signals = signal.SIGTERM,
    grace: float = 0.0,
) -> None:
    """Wait for `pids` to exit: after `grace` seconds send `first_signal`, after `timeout` SIGKILL."""
    start = time.monotonic()
    sent: set[signal.Signals] = set()
    while alive := [pid for pid in pids if _pid_alive(pid)]:
        elapsed = time.monotonic() - start
        sig = signal.SIGKILL if elapsed > timeout else first_signal if elapsed >= grace else None
        if sig is not None and sig not in sent:
            sent.add(sig)
            for pid in alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        time.sleep(poll_interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("dir", help="state directory (created by `up`)")
    parser.add_argument("--nodes", type=int, default=3)
    args = parser.parse_args(argv)
    if args.action == "up":
        cluster = SlurmCluster(args.dir, nodes=args.nodes).start(teardown_at_exit=False)
        print(f"export SLURM_CONF={cluster.conf_path}")
        print(f"# stop with: {sys.executable} {__file__} down {cluster.state_dir}")
        return 0
    meta = Path(args.dir) / "cluster.json"
    nodes = len(json.loads(meta.read_text())["nodes"]) if meta.exists() else args.nodes
    SlurmCluster(args.dir, nodes=nodes).stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
