"""NeMo Curator's `set_torch_to_use_rmm` on a GPU worker. Imports torch only when called, so that the
cluster layer can hand it to `client.run` without importing torch in the driver."""

from __future__ import annotations


def use_rmm_for_torch() -> None:
    """PyTorch allocates from RAPIDS' memory pool, so both share one pool."""
    import torch
    from rmm.allocators.torch import rmm_torch_allocator

    if torch.cuda.get_allocator_backend() != "pluggable":
        torch.cuda.memory.change_current_allocator(rmm_torch_allocator)
