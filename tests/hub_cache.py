"""The huggingface_hub cache layout, by hand, for tests without network: blobs named by content hash,
snapshot directories of symlinks named by commit, and `refs/main` naming the newest commit."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path


def cache_checkpoint(hub: Path, repo_id: str, commit: str, model_dir: Path) -> Path:
    """`cache_snapshot` of every file of the checkpoint directory `model_dir`."""
    return cache_snapshot(hub, repo_id, commit, {p.name: p for p in model_dir.iterdir() if p.is_file()})


def updated_checkpoint(model_dir: Path, out: Path, tensor: str) -> Path:
    """A copy of the checkpoint `model_dir` whose weight `tensor` has its first value raised by 100 (a head's
    bias: every document gets its first label), as a repository updated on the hub."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    weights = load_file(str(out / "model.safetensors"))
    weights[tensor].view(-1)[0] += 100.0
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out


def cache_snapshot(hub: Path, repo_id: str, commit: str, files: dict[str, Path]) -> Path:
    """Add the snapshot `commit` of `repo_id` holding `files` (name -> source) to the cache `hub`, and point
    `refs/main` at it (a second call for the same repository is a hub update: `main` moves on)."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    snapshot.mkdir(parents=True)
    for name, src in files.items():
        blob = repo / "blobs" / hashlib.sha256(src.read_bytes()).hexdigest()
        shutil.copyfile(src, blob)
        (snapshot / name).symlink_to(Path("../..") / "blobs" / blob.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    return snapshot
