"""NeMo Curator 0.7.1's client helpers: `get_client`, `start_dask_cpu_local_cluster`, `start_dask_gpu_local_cluster`.

Same names, arguments and defaults. Differences that make them work everywhere: `protocol` applies to CPU
clusters too, NeMo's "ucx" means UCXX ("ucxx"), `cluster_type="gpu"` on a machine without a GPU starts a
CPU cluster with a warning, and options that cannot apply (GPU options on CPU, local-cluster options when
joining a scheduler) are named in a warning instead of being dropped without a word. Joining a scheduler waits
for its scheduler file and first worker (NeMo: an AssertionError unless a worker is there already, and a
scheduler file not yet written waited for without end inside distributed), as `run --scheduler-file` does
(first_worker.py): workers submitted as jobs of their own may wait in Slurm's queue; the keyword-only
`worker_wait` bounds both (None: --worker-wait's default, 0: as long as it takes), and a `scheduler_address` that
refuses connections is waited for too (a scheduler job started beside the client's; NeMo: an error after 30 s).
An address that accepts but never speaks Dask is an error within the connect timeout (scheduler_handshake.py;
NeMo: waits for ever). Never imports torch
(`set_torch_to_use_rmm` runs the engine's `use_rmm_for_torch` on the GPU workers).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from typing import Any

from hpc_classify.cluster.connect import check_client_protocol
from hpc_classify.cluster.first_worker import (
    WorkerWait,
    join_error,
    wait_for_first_worker,
    wait_for_scheduler_address,
    wait_for_scheduler_file,
)
from hpc_classify.cluster.local import (
    check_cluster_arguments,
    keep_restarting_local_workers,
    start_cpu_cluster,
    start_wait,
    visible_gpu_count,
)
from hpc_classify.cluster.main_guard import refuse_start_while_importing_main, refuse_unguarded_main
from hpc_classify.cluster.scheduler_handshake import answers_as_scheduler, check_answers_as_scheduler
from hpc_classify.cluster.worker_start import construct_with_deadline
from hpc_classify.config import DEFAULT_WORKER_WAIT
from hpc_classify.errors import ClusterError, ConfigError
from hpc_classify.whole_numbers import is_seconds, seconds_rule
from hpc_classify.worker_env import quiet_ucx_here

logger = logging.getLogger(__name__)

PROTOCOLS = {"tcp": "tcp", "ucx": "ucxx", "ucxx": "ucxx"}
CONNECT_TIMEOUT_S = 30  # reaching a scheduler (its file written), and a local cluster's first worker
_GPU_DEFAULTS = {
    "nvlink_only": False,
    "rmm_pool_size": "1024M",
    "enable_spilling": True,
    "set_torch_to_use_rmm": False,
    "rmm_async": True,
    "rmm_maximum_pool_size": None,
    "rmm_managed_memory": False,
    "rmm_release_threshold": None,
}


def dask_protocol(protocol: str) -> str:
    """Dask's name for a NeMo protocol: "ucx" is UCXX (distributed-ucxx), "tcp" is tcp."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol must be one of {', '.join(PROTOCOLS)}, not {protocol!r}")
    if PROTOCOLS[protocol] == "ucxx":
        quiet_ucx_here()
    return PROTOCOLS[protocol]


def get_client(
    cluster_type: str = "cpu",
    scheduler_address: Any = None,
    scheduler_file: str | None = None,
    n_workers: int | None = os.cpu_count(),
    threads_per_worker: int = 1,
    nvlink_only: bool = False,
    protocol: str = "tcp",
    rmm_pool_size: int | str | None = "1024M",
    enable_spilling: bool = True,
    set_torch_to_use_rmm: bool = False,
    rmm_async: bool = True,
    rmm_maximum_pool_size: int | str | None = None,
    rmm_managed_memory: bool = False,
    rmm_release_threshold: int | str | None = None,
    *,
    worker_wait: float | None = None,
    **cluster_kwargs: Any,
) -> Any:
    """A `distributed.Client`: joined to `scheduler_address` (an address, or a cluster object such as a
    LocalCluster) or `scheduler_file`, else on a new local CPU or GPU cluster (`cluster_kwargs` go to
    LocalCluster / LocalCUDACluster). Close it with `client.shutdown()` to stop a cluster started here.
    Joining waits up to `worker_wait` s (None: 300, --worker-wait's default; 0: as long as it takes) for the
    scheduler file to be written (or the scheduler address to accept connections) and a first worker to join; it does not apply to a local cluster (whose
    workers' start deadline `death_timeout=` sets)."""
    if cluster_type not in ("cpu", "gpu"):
        raise ConfigError(f"cluster_type must be 'cpu' or 'gpu', not {cluster_type!r}")
    if worker_wait is not None and not is_seconds(worker_wait, allow_zero=True):
        raise ConfigError(
            f"worker_wait must be {seconds_rule(allow_zero=True)} (0: no limit), not {worker_wait!r}"
        )
    join_only = {"worker_wait": worker_wait} if worker_wait is not None else {}
    protocol = dask_protocol(protocol)
    gpu_options = {
        "nvlink_only": nvlink_only,
        "rmm_pool_size": rmm_pool_size,
        "enable_spilling": enable_spilling,
        "set_torch_to_use_rmm": set_torch_to_use_rmm,
        "rmm_async": rmm_async,
        "rmm_maximum_pool_size": rmm_maximum_pool_size,
        "rmm_managed_memory": rmm_managed_memory,
        "rmm_release_threshold": rmm_release_threshold,
    }
    local = {"n_workers": n_workers, "threads_per_worker": threads_per_worker}
    if scheduler_address or scheduler_file:
        if scheduler_address and scheduler_file:
            raise ConfigError("give scheduler_address or scheduler_file, not both")
        _warn_unused(
            "joining a running scheduler",
            {**_changed(gpu_options), **_changed_local(local), **cluster_kwargs},
        )
        wait = WorkerWait(DEFAULT_WORKER_WAIT if worker_wait is None else worker_wait, _never, "worker_wait")
        return _join(scheduler_address, scheduler_file, protocol, wait)
    _warn_unused("a local cluster (death_timeout= sets its workers' start deadline)", join_only)
    if cluster_type == "gpu" and visible_gpu_count() > 0:
        _warn_unused("a GPU cluster (one worker per GPU, as in NeMo Curator)", _changed_local(local))
        return start_dask_gpu_local_cluster(protocol=protocol, **gpu_options, **cluster_kwargs)
    if cluster_type == "gpu":
        logger.warning("cluster_type='gpu' but no GPU is visible: starting a local CPU cluster instead")
        if "n_workers" not in _changed_local(local):
            n_workers = 1  # by default one process whose torch pool uses every core (as a GPU worker its GPU)
    _warn_unused("a CPU cluster (they are for GPU clusters)", _changed(gpu_options))
    return start_dask_cpu_local_cluster(n_workers, threads_per_worker, protocol=protocol, **cluster_kwargs)


def start_dask_cpu_local_cluster(
    n_workers: int | None = os.cpu_count(), threads_per_worker: int = 1, **cluster_kwargs: Any
) -> Any:
    """A client on a new LocalCluster of `n_workers` processes (each with its share of the cores for torch)."""
    from distributed import Client

    protocol = dask_protocol(cluster_kwargs.pop("protocol", "tcp"))
    cluster = start_cpu_cluster(n_workers, threads_per_worker, protocol, **cluster_kwargs)
    return _client_with_workers(Client(cluster), "the local CPU cluster")


def start_dask_gpu_local_cluster(
    nvlink_only: bool = False,
    protocol: str = "tcp",
    rmm_pool_size: int | str | None = "1024M",
    enable_spilling: bool = True,
    set_torch_to_use_rmm: bool = True,
    rmm_async: bool = True,
    rmm_maximum_pool_size: int | str | None = None,
    rmm_managed_memory: bool = False,
    rmm_release_threshold: int | str | None = None,
    **cluster_kwargs: Any,
) -> Any:
    """A client on a new dask-cuda LocalCUDACluster: one worker per visible GPU, with RMM and cuDF spilling."""
    from distributed import Client

    refuse_start_while_importing_main()
    _check_rapids_for(
        {
            "enable_spilling": ("cudf", enable_spilling),
            "rmm_pool_size": ("rmm", rmm_pool_size),
            "rmm_async": ("rmm", rmm_async),
            "rmm_maximum_pool_size": ("rmm", rmm_maximum_pool_size),
            "rmm_managed_memory": ("rmm", rmm_managed_memory),
            "rmm_release_threshold": ("rmm", rmm_release_threshold),
            "set_torch_to_use_rmm": ("rmm", set_torch_to_use_rmm),
        }
    )
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError as exc:
        raise ClusterError(
            f"a GPU cluster needs dask-cuda ({exc})",
            hint="pip install 'hpc-classify[gpu]' on a GPU node, or use cluster_type='cpu'",
        ) from exc
    check_cluster_arguments(LocalCUDACluster, None, None, cluster_kwargs)
    protocol = dask_protocol(protocol)
    if nvlink_only and protocol == "ucxx":
        nvlink = {"enable_tcp_over_ucx": True, "enable_nvlink": True, "enable_infiniband": False}
        cluster_kwargs = {**nvlink, "enable_rdmacm": False, **cluster_kwargs}
    elif nvlink_only:
        raise ConfigError(
            "nvlink_only needs protocol='ucx'", hint="pass protocol='ucx' (UCXX) with nvlink_only=True"
        )
    keep_restarting_local_workers()
    # The CPU path's start deadline (death_timeout=, else --worker-wait's default): NeMo's waits for ever.
    wait = start_wait(None, cluster_kwargs)
    cluster_kwargs.pop("death_timeout", None)
    options = {
        "protocol": protocol,
        "rmm_pool_size": rmm_pool_size,
        "enable_cudf_spill": enable_spilling,
        "rmm_async": rmm_async,
        "rmm_maximum_pool_size": rmm_maximum_pool_size,
        "rmm_managed_memory": rmm_managed_memory,
        "rmm_release_threshold": rmm_release_threshold,
        "dashboard_address": ":0",
        **cluster_kwargs,
    }
    try:
        cluster = construct_with_deadline(LocalCUDACluster, options, wait, "death_timeout= of get_client")
    except ClusterError:
        raise
    except Exception as exc:
        refuse_unguarded_main(exc)
        raise
    client = _client_with_workers(Client(cluster), "the local GPU cluster")
    if set_torch_to_use_rmm:
        from hpc_classify.engine.rmm_allocator import use_rmm_for_torch

        client.run(use_rmm_for_torch)
        logger.info("torch on the workers allocates from the RMM pool")
    return client


def _check_rapids_for(options: dict[str, tuple[str, Any]]) -> None:
    """NeMo's GPU defaults (cuDF spilling, an RMM pool, torch on RMM) need RAPIDS; the classifiers do not.
    Where it is missing, one clear error naming the options set, instead of an ImportError inside dask-cuda
    or on every worker."""
    missing = {package for package, _ in options.values() if importlib.util.find_spec(package) is None}
    needing = [
        f"{name}={value!r}" for name, (package, value) in options.items() if value and package in missing
    ]
    if needing:
        raise ConfigError(
            f"{', '.join(needing)} need(s) RAPIDS ({' and '.join(sorted(missing))} not installed)",
            hint="install RAPIDS (pip install 'hpc-classify[gpu]'), or pass enable_spilling=False, "
            "rmm_pool_size=None, rmm_async=False, set_torch_to_use_rmm=False: the classifiers need neither",
        )


def _join(scheduler_address: Any, scheduler_file: str | None, protocol: str, wait: WorkerWait) -> Any:
    """A client of the scheduler, once a worker has joined it (within `wait`). The scheduler file, or a scheduler
    address not accepting yet, is waited for here: distributed's own wait for a file has no end and says nothing,
    and an address is tried for 30 s only."""
    from distributed import Client

    if scheduler_file:
        wait_for_scheduler_file(scheduler_file, wait)
        target = f"scheduler file {scheduler_file}"
        make = lambda: Client(scheduler_file=scheduler_file, timeout=f"{CONNECT_TIMEOUT_S}s")  # noqa: E731
    elif not isinstance(scheduler_address, str):  # a cluster object, as NeMo's docstring allows
        cluster = scheduler_address
        target = f"{type(cluster).__name__} at {getattr(cluster, 'scheduler_address', '?')}"
        make = lambda: Client(cluster, timeout=f"{CONNECT_TIMEOUT_S}s")  # noqa: E731
    else:
        address = scheduler_address if "://" in scheduler_address else f"{protocol}://{scheduler_address}"
        target = f"scheduler {address}"
        wait_for_scheduler_address(
            address, wait, answers=lambda a: answers_as_scheduler(a, CONNECT_TIMEOUT_S)
        )
        make = lambda: Client(address, timeout=f"{CONNECT_TIMEOUT_S}s")  # noqa: E731
    if scheduler_file or isinstance(scheduler_address, str):
        check_answers_as_scheduler(None if scheduler_file else address, CONNECT_TIMEOUT_S, scheduler_file)
    try:
        client = make()
    except (OSError, TimeoutError) as exc:
        hint = "is the scheduler running, and reachable over this protocol ('tcp' or 'ucx')?"
        raise join_error(target, exc, scheduler_file, hint) from exc
    if protocol != "tcp":  # ucx asked for (tcp is the default: it cannot be told from "not given")
        check_client_protocol(client, protocol, target)
    try:
        wait_for_first_worker(client, None, wait, target)
    except BaseException:  # also Ctrl-C, the way out of worker_wait=0
        client.close()
        raise
    return client


def _never() -> bool:
    return False  # no stop request in a Python session: Ctrl-C (KeyboardInterrupt) ends a wait


def _client_with_workers(client: Any, target: str) -> Any:
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT_S)
    except TimeoutError as exc:
        client.close()
        raise ClusterError(
            f"no worker joined {target} within {CONNECT_TIMEOUT_S} s",
            hint="check that the workers started and can reach the scheduler",
        ) from exc
    return client


def _changed(gpu_options: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in gpu_options.items() if v != _GPU_DEFAULTS[k]}


def _changed_local(local: dict[str, Any]) -> dict[str, Any]:
    defaults = {"n_workers": os.cpu_count(), "threads_per_worker": 1}
    return {k: v for k, v in local.items() if v != defaults[k]}


def _warn_unused(where: str, options: dict[str, Any]) -> None:
    if options:
        settings = ", ".join(f"{k}={v!r}" for k, v in options.items())
        logger.warning("get_client: %s do(es) not apply to %s and are not used", settings, where)
