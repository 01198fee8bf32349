"""NeMo Curator 0.7.1's worker helpers: an object loaded once per Dask worker and kept on it, the current
client and its worker count (NeMo's filters, modifiers and examples import them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from distributed import Client, get_worker


class NoWorkerError(Exception):
    """`load_object_on_worker` called outside a Dask worker (as when Dask infers a function's output on the
    client); NeMo's callers catch it and load the object there instead."""


def load_object_on_worker(
    attr: str, load_object_function: Callable[..., Any], load_object_kwargs: Mapping[str, Any]
) -> Any:
    """The worker's attribute `attr`; when the worker has none yet, `load_object_function(**load_object_kwargs)`
    is called once and kept there. Outside a worker: NoWorkerError."""
    try:
        worker = get_worker()
    except ValueError as exc:
        raise NoWorkerError(str(exc)) from exc
    if not hasattr(worker, attr):
        setattr(worker, attr, load_object_function(**load_object_kwargs))
    return getattr(worker, attr)


def get_num_workers(client: Client | None) -> int | None:
    """How many workers `client`'s cluster has (None for no client)."""
    if client is None:
        return None
    return len(client.scheduler_info(n_workers=-1)["workers"])


def get_current_client() -> Client | None:
    """The client of this context, or the latest one made; None when there is none."""
    try:
        return Client.current()
    except ValueError:
        return None
