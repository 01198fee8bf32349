"""Whether the scheduler to join answers as a Dask scheduler, before a `Client` is made for it.

distributed's `connect` reads the peer's handshake without a deadline (comm/core.py), so a `Client` of an address
where something accepts connections and never speaks Dask (a dashboard's port, another program on a port a
scheduler left, a frozen process) waits for ever, whatever its `timeout`: get_client(scheduler_file=...) was
seen hanging so. A Dask server writes its handshake as soon as it accepts a connection, so reading it within the
connect timeout tells. Judged for tcp and tls; a ucx address is not (UCX runs its own progress and connection
manager). An address that refuses or cannot be reached is left to the `Client`, whose error says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import time
from typing import Any

from hpc_classify.cluster.first_worker import REMOVE_OR_START, scheduler_file_names
from hpc_classify.cluster.rank0_liveness import PROBE_TIMEOUT
from hpc_classify.errors import ClusterError

SILENT = "accepts connections but does not answer as a Dask scheduler"


class _Silent(Exception):
    """Connected, but no handshake came: why (a timeout, the peer closing, bytes that are not Dask's)."""


async def _read_handshake(address: str, timeout: float, connect_timeout: float | None = None) -> bool:
    from distributed.comm import registry
    from distributed.comm.addressing import parse_address
    from distributed.security import Security

    scheme, loc = parse_address(address)
    connector = registry.get_backend(scheme).get_connector()
    deadline = time.monotonic() + timeout
    try:
        comm = await asyncio.wait_for(
            connector.connect(loc, deserialize=False, **Security().get_connection_args("client")),
            connect_timeout or timeout,
        )
    except (TimeoutError, OSError):
        return False  # refused or unreachable: the Client's own error names that
    try:
        handshake = await asyncio.wait_for(comm.read(), max(0.1, deadline - time.monotonic()))
        if not isinstance(handshake, dict):
            raise _Silent(f"its first message is not a Dask handshake: {handshake!r:.80}")
        # Ours in return, so that the scheduler does not log a connection "closed before handshake completed".
        await asyncio.wait_for(comm.write(comm.handshake_info()), max(0.1, deadline - time.monotonic()))
    except _Silent:
        raise
    except TimeoutError as exc:
        raise _Silent(f"no handshake within {timeout:g} s") from exc
    except Exception as exc:  # the peer closed the connection, or sent what is not a Dask message
        raise _Silent(str(exc) or type(exc).__name__) from exc
    finally:
        await comm.close()
    return True


def check_answers_as_scheduler(address: Any, timeout: float, scheduler_file: str | None = None) -> None:
    """A ClusterError naming `address` (None: the one `scheduler_file` names) and the scheduler file when it
    accepts a connection but sends no Dask handshake within `timeout` s. Runs on a thread of its own: the caller
    may be inside an event loop (a notebook)."""
    if address is None and scheduler_file:
        address = _address_in(scheduler_file)
    if not isinstance(address, str) or address.partition("://")[0] not in ("tcp", "tls"):
        return
    _ask(address, timeout, None, scheduler_file)


def answers_as_scheduler(address: str, timeout: float, connect_timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the scheduler at the tcp or tls `address` is up: False where nothing accepts a connection within
    `connect_timeout` s (refused, unreachable), True once the handshakes are exchanged, a ClusterError where it
    accepts but sends no Dask handshake within `timeout` s. A plain TCP connect, closed at once, made a live
    scheduler log "Connection from ... closed before handshake completed" at each look of a wait."""
    return _ask(address, timeout, connect_timeout, None)


def _ask(address: str, timeout: float, connect_timeout: float | None, scheduler_file: str | None) -> bool:
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="scheduler-handshake") as pool:
        try:
            return pool.submit(asyncio.run, _read_handshake(address, timeout, connect_timeout)).result()
        except _Silent as exc:
            raise _silent_error(address, scheduler_file, str(exc)) from None


def _address_in(scheduler_file: str) -> Any:
    try:
        with open(scheduler_file) as f:
            return json.load(f).get("address")
    except (OSError, ValueError, AttributeError):
        return None  # the Client reads it again, and says what is wrong with it


def _silent_error(address: str, scheduler_file: str | None, why: str) -> ClusterError:
    names = scheduler_file_names(scheduler_file) if scheduler_file else None
    if names is not None:
        return ClusterError(
            f"{names}, which {SILENT} ({why})",
            hint="its scheduler may have ended and another program taken its port, or it is stuck; "
            + REMOVE_OR_START,
        )
    return ClusterError(
        f"the scheduler {address} {SILENT} ({why})",
        hint="check the address: the scheduler's port (8786 by default), not its dashboard's (8787)",
    )
