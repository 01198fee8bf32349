"""Content hashes of input files, streamed in fixed-size chunks (memory stays flat for any file size)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

HASH_CHUNK_BYTES = 4 * 1024 * 1024


class HashCancelled(Exception):
    """`file_sha256` was told to stop before the end of the file."""


def file_sha256(
    path: str, *, chunk_bytes: int = HASH_CHUNK_BYTES, cancelled: Callable[[], bool] | None = None
) -> str:
    """The SHA-256 of the file's bytes as stored (compressed files are hashed compressed), hex. `cancelled()`
    true between two chunks raises HashCancelled (a large file takes about 1 s per GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            if cancelled is not None and cancelled():
                raise HashCancelled(path)
            digest.update(chunk)
    return digest.hexdigest()
