"""Content hashes of input files, streamed in fixed-size chunks (memory stays flat for any file size)."""

from __future__ import annotations

import hashlib

HASH_CHUNK_BYTES = 4 * 1024 * 1024


def file_sha256(path: str, *, chunk_bytes: int = HASH_CHUNK_BYTES) -> str:
    """The SHA-256 of the file's bytes as stored (compressed files are hashed compressed), hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
    return digest.hexdigest()
