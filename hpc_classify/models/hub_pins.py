"""`HubPins`: the hub models of one classifier object, each held to the commit its first resolution found.

The driver resolves every classifier's models on the client to fingerprint them (`_run.json` records the
snapshot's commit and its files' hashes); the classifier object then travels to the workers by pickle.
Resolving a branch or tag there again (`main` when no revision was given) would follow the hub: an update
during a multi-day run on compute nodes with internet would have workers load another snapshot than the one
fingerprinted, and one output directory would mix two models. The pins travel inside the classifier, so
every later resolution asks for the commit itself, an immutable snapshot that huggingface_hub also finds
in the cache offline (a commit needs no `refs/` file) and, online, without asking the hub what `main` is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpc_classify.models.hub import snapshot_commit

logger = logging.getLogger(__name__)

# resolver(model, revision, **options) -> the model's directory: resolve_model_dir or one built on it.
Resolver = Callable[..., Path]


class HubPins:
    """(model, revision asked for) -> the commit it resolved to first. Small and picklable: it lives on a
    classifier object, as its private `_hub_pins`, and is never part of its identity or fingerprint."""

    def __init__(self) -> None:
        self._commits: dict[tuple[str, str | None], str] = {}

    def pinned(self, model: str, revision: str | None) -> str | None:
        """The commit `model` at `revision` is pinned to: None before its first resolution, or for a local
        directory. Reads no file (engine cache keys call it)."""
        return self._commits.get((model, revision))

    def resolve(self, resolver: Resolver, model: str, revision: str | None, **options: Any) -> Path:
        """`resolver(model, revision, **options)`, asked for the pinned commit once there is one. The first
        hub snapshot it finds pins `model` at `revision` to that snapshot's commit."""
        key = (model, revision)
        path = resolver(model, self._commits.get(key, revision), **options)
        if key not in self._commits and (commit := snapshot_commit(model, path)) is not None:
            self._commits[key] = commit
            if commit != revision:  # a branch or tag: say which commit this classifier loads from now on
                logger.info(
                    "hub model %s at revision %s pinned to commit %s", model, revision or "main", commit
                )
        return path

    def revision(self, resolver: Resolver, model: str, revision: str | None, **options: Any) -> str | None:
        """The revision to hand a loader that resolves `model` itself: the pinned commit (resolving first if
        there is none yet), or `revision` as given for a local directory."""
        if self.pinned(model, revision) is None:
            self.resolve(resolver, model, revision, **options)
        return self.pinned(model, revision) or revision
