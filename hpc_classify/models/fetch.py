"""Pre-populating the Hugging Face cache on a login node, so that compute nodes run with HF_HUB_OFFLINE=1.

For each classifier: its repository's checkpoint files only (`hub.CLASSIFIER_FILE_PATTERNS`), then the
`config.json` of its `base_model` (never the base model's weights: the classifier's safetensors carry them).
Both land in the standard cache layout (`models--org--name/{blobs,snapshots/<commit>,refs/<revision>}`), which
is exactly what `load_classifier_checkpoint` reads offline.

With HF_HUB_OFFLINE=1 (the hpc-classify module's default) nothing is downloaded: the same call then checks that
the cache already holds everything and reports the cached commits, or says how to fetch what is missing.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hpc_classify.errors import CacheAccessError, CheckpointFormatError, ConfigError, ModelNotAvailableError
from hpc_classify.models.checkpoint_meta import TOKENIZER_FILES_HINT, VOCABULARY_PATTERNS
from hpc_classify.models.hub import (
    BASE_CONFIG_FILE,
    CLASSIFIER_FILE_PATTERNS,
    fetch_models_command,
    hub_cache_dir,
    hub_failure_reason,
    hub_offline,
    offline_token,
    offline_variable,
    read_json_file,
)
from hpc_classify.models.registry_defaults import BUNDLED_MODELS, DEFAULT_MODELS

logger = logging.getLogger(__name__)

# What a repository must hold for its loader: a file name, or a tuple of patterns of which one must match
# (the tokenizer: its files vary by model, but without one transformers builds an empty tokenizer), or a
# function of the snapshot folder saying what it lacks (LlamaGuard's weight shards, named by their index).
Required = Sequence[str | tuple[str, ...] | Callable[[Path], list[str]]]
REQUIRED_FILES: Required = ("config.json", "model.safetensors", VOCABULARY_PATTERNS)


@dataclass(frozen=True)
class FetchedModel:
    """One classifier now in the cache: what was asked for and the commits it resolved to (pin these)."""

    name: str  # as given: a built-in classifier name or a hub id
    repo_id: str
    revision: str  # as requested (branch, tag or commit)
    commit: str  # the commit the revision resolved to
    path: Path  # the snapshot directory
    files: tuple[str, ...]
    base_model: str | None  # hub id whose config.json was fetched (None: architecture inline or local path)
    base_commit: str | None


def parse_classifier_spec(spec: str, default_revision: str | None) -> tuple[str, str, str]:
    """`domain`, `nvidia/domain-classifier` or either with `@REVISION` -> (name, repo_id, revision)."""
    name, _, pinned = spec.partition("@")
    name = name.strip()
    revision = pinned.strip() or default_revision or "main"
    if name in DEFAULT_MODELS:
        return name, DEFAULT_MODELS[name], revision
    if name in BUNDLED_MODELS:
        return name, name, revision
    if name.count("/") == 1 and all(name.split("/")):
        return name, name, revision
    known = ", ".join([*DEFAULT_MODELS, *BUNDLED_MODELS])
    raise ConfigError(
        f"unknown classifier {spec!r}",
        hint=f"use one of {known}, a hub id such as nvidia/domain-classifier, optionally with @REVISION",
    )


def _commit_of(snapshot_file_or_dir: Path) -> str:
    # .../models--org--name/snapshots/<commit>[/file]: the snapshot folder's name is the commit hash.
    path = Path(snapshot_file_or_dir)
    while path.parent.name != "snapshots":
        if path == path.parent:
            return "unknown"
        path = path.parent
    return path.name


def _offline_setting() -> str:
    if offline_variable() == "HF_HUB_OFFLINE":
        return "HF_HUB_OFFLINE=1 is set (the hpc-classify module sets it for compute nodes)"
    return "TRANSFORMERS_OFFLINE=1 is set (and HF_HUB_OFFLINE, which would override it, is not)"


def _gated(repo_id: str, error: Exception) -> bool:
    from huggingface_hub.errors import GatedRepoError

    from hpc_classify.models.llama_guard import LLAMA_GUARD_BASE

    return repo_id == LLAMA_GUARD_BASE or isinstance(error, GatedRepoError)


def _fetch_error(
    what: str, repo_id: str, revision: str, cache: Path, error: Exception, command: str
) -> ModelNotAvailableError:
    from hpc_classify.models.cache_access import cache_problem

    # A full disk, a cache folder not writable (or not readable) by this user: the hub is not to blame.
    # (LocalEntryNotFoundError is an OSError too, a FileNotFoundError: cache_problem looks at errno and
    # PermissionError only, and at the cache's files.)
    problem = cache_problem(cache, repo_id, revision, error)
    if problem is not None:
        return CacheAccessError(
            f"cannot fetch {what} {repo_id!r} at revision {revision!r} into {cache} ({problem.reason})",
            hint=problem.hint,
        )
    reason = hub_failure_reason(error)
    login = (
        f"{repo_id} is gated: accept its license on https://huggingface.co/{repo_id} with your Hugging Face "
        "account and log in (`hf auth login`, or set HF_TOKEN)"
    )
    if hub_offline():
        hint = (
            f"{_offline_setting()}, so nothing was downloaded: on a login node with internet run "
            f"`HF_HUB_OFFLINE=0 {command}`" + (f" ({login} first)" if _gated(repo_id, error) else "")
        )
    elif _gated(repo_id, error):
        hint = f"{login}, then run `{command}` again"
    else:
        hint = (
            "check the name and revision on the Hugging Face hub, that this node reaches it (proxy settings, "
            "HF_ENDPOINT), and HF_TOKEN for gated repositories"
        )
    return ModelNotAvailableError(
        f"cannot fetch {what} {repo_id!r} at revision {revision!r} into {cache} ({reason})", hint=hint
    )


def _fetch_one(
    name: str,
    repo_id: str,
    revision: str,
    cache: Path,
    offline: bool,
    *,
    command: str,
    patterns: Sequence[str] = CLASSIFIER_FILE_PATTERNS,
    required: Required = REQUIRED_FILES,
) -> FetchedModel:
    from huggingface_hub import snapshot_download  # lazy: the hub client is not free

    try:
        snapshot = Path(
            snapshot_download(
                repo_id,
                revision=revision,
                cache_dir=cache,
                allow_patterns=list(patterns),
                local_files_only=offline,
                token=offline_token(offline),
            )
        )
    except Exception as error:  # noqa: BLE001 — every hub failure means the same thing to the user
        what = f"{name} repository" if name in BUNDLED_MODELS else "classifier"
        raise _fetch_error(what, repo_id, revision, cache, error, command) from None
    files = tuple(sorted(p.name for p in snapshot.iterdir() if p.is_file()))
    missing = _missing(required, files, snapshot)
    if missing:
        raise CheckpointFormatError(
            f"{repo_id}@{revision}: the repository has no {'; no '.join(missing)} (found: {', '.join(files)})",
            hint=(
                f"the cached snapshot {snapshot} lacks files (an interrupted fetch, or files removed): on a "
                f"login node with internet run `HF_HUB_OFFLINE=0 {command}`"
            )
            if offline
            else "hpc-classify loads checkpoints in the public NVIDIA layout (config.json, model.safetensors, "
            f"tokenizer files; {TOKENIZER_FILES_HINT}); a repository with only pytorch_model.bin needs "
            "converting",
        )
    base_model = base_commit = None
    if patterns is CLASSIFIER_FILE_PATTERNS:  # a classifier checkpoint: its base model's config too
        config = read_json_file(snapshot / "config.json", f"classifier {repo_id}")
        base_model, base_commit = _fetch_base_config(config, repo_id, cache, offline, command)
    return FetchedModel(
        name, repo_id, revision, _commit_of(snapshot), snapshot, files, base_model, base_commit
    )


def _missing(required: Required, files: Sequence[str], snapshot: Path) -> list[str]:
    missing = []
    for need in required:
        if callable(need):
            missing.extend(need(snapshot))
        elif isinstance(need, str):
            if need not in files:
                missing.append(need)
        elif not any(fnmatch.fnmatch(name, pattern) for name in files for pattern in need):
            missing.append(f"tokenizer file ({', '.join(need)})")
    return missing


def _fetch_base_config(config: dict, repo_id: str, cache: Path, offline: bool, command: str) -> tuple:
    from huggingface_hub import hf_hub_download

    base = config.get("base_model")
    if not base or "model_type" in config:
        return None, None  # the architecture is inline: the loader needs nothing else
    if Path(str(base)).expanduser().exists() or str(base).startswith(("/", ".", "~")):
        logger.warning(
            "%s: base_model %s is a local path; compute nodes must see the same path", repo_id, base
        )
        return None, None
    # Revision "main", as the loader asks for it: a base model's config does not change between commits
    # in a way that matters here, and a classifier pins its own weights.
    try:
        path = hf_hub_download(
            str(base),
            BASE_CONFIG_FILE,
            cache_dir=cache,
            local_files_only=offline,
            token=offline_token(offline),
        )
    except Exception as error:  # noqa: BLE001
        what = f"base model config of {repo_id}:"
        raise _fetch_error(what, str(base), "main", cache, error, command) from None
    return str(base), _commit_of(Path(path))


def fetch_models(
    classifiers: Sequence[str], cache_dir: str | Path | None = None, revision: str | None = None
) -> list[FetchedModel]:
    """Put each classifier (name like `domain`, or hub id, optionally `@REVISION`) and its base model's
    config.json into the hub cache (`cache_dir`, default `$HF_HOME/hub`). With HF_HUB_OFFLINE=1 only checks
    the cache. Raises ModelNotAvailableError (naming model, revision and cache) when something cannot be had."""
    if not classifiers:
        raise ConfigError(
            "no classifier given", hint=f"pass --classifier with any of {', '.join(DEFAULT_MODELS)}"
        )
    specs = [parse_classifier_spec(spec, revision) for spec in classifiers]  # all names checked first
    cache = Path(cache_dir).expanduser().resolve() if cache_dir else hub_cache_dir()
    offline = hub_offline()
    if not offline:
        from hpc_classify.models.cache_access import make_cache_dir, umask_warning

        make_cache_dir(cache)
        if warning := umask_warning(cache):
            logger.warning("%s", warning)
    fetched: list[FetchedModel] = []
    attempted: list[str] = []
    try:
        for name, repo_id, rev in specs:
            # What the user asked for (`aegis`, not the LlamaGuard repository it needs; never a base model,
            # which is no classifier), so that running it again fetches everything that classifier loads.
            command = fetch_models_command(name, rev, cache)
            for repo, revision, patterns, required in _repositories(name, repo_id, rev):
                logger.info("%s %s@%s into %s", "checking" if offline else "fetching", repo, revision, cache)
                attempted.append(repo)
                item = _fetch_one(
                    name,
                    repo,
                    revision,
                    cache,
                    offline,
                    command=command,
                    patterns=patterns,
                    required=required,
                )
                fetched.append(item)
                attempted.extend([item.base_model] if item.base_model else [])
    finally:
        if not offline:  # what was written, even by a fetch that failed half-way
            _share(cache, attempted)
    return fetched


def _share(cache: Path, repo_ids: list[str]) -> None:
    """Whoever may read the cache's folder may read what was fetched into it (huggingface_hub writes under
    the umask, and its tree listings 0600 whatever the umask)."""
    from hpc_classify.models.cache_access import share_like_cache, shared_bits, whom

    failed = share_like_cache(cache, repo_ids)
    if failed:
        logger.warning(
            "%d path(s) of the models fetched into %s stay unreadable by %s, to whom the cache is open: "
            "this user may not change them (e.g. %s); their owner must run `chmod -R a+rX` on them",
            len(failed),
            cache,
            whom(shared_bits(cache)),
            failed[0],
        )


def _repositories(name: str, repo_id: str, revision: str) -> list[tuple[str, str, Sequence[str], Required]]:
    """(repository, revision, file patterns, required files) that classifier `name` loads. A bundle's
    @REVISION pins its adapter (or guard net); the gated LlamaGuard base is taken at main and carries the
    tokenizer (the adapters and the guard net have none)."""
    if name not in BUNDLED_MODELS:
        return [(repo_id, revision, CLASSIFIER_FILE_PATTERNS, REQUIRED_FILES)]
    from hpc_classify.models import llama_guard as lg
    from hpc_classify.models.llama_guard_weights import missing_base_weights

    base = (
        lg.LLAMA_GUARD_BASE,
        "main",
        lg.BASE_PATTERNS,
        ("config.json", VOCABULARY_PATTERNS, missing_base_weights),
    )
    adapter_files = ("adapter_config.json", lg.ADAPTER_WEIGHTS)
    if name == "instruction-data-guard":
        return [
            base,
            (lg.AEGIS_DEFENSIVE, "main", lg.ADAPTER_PATTERNS, adapter_files),
            (lg.INSTRUCTION_DATA_GUARD, revision, lg.GUARD_PATTERNS, ("config.json", "model.safetensors")),
        ]
    adapter = lg.AEGIS_PERMISSIVE if name == "aegis-permissive" else lg.AEGIS_DEFENSIVE
    return [base, (adapter, revision, lg.ADAPTER_PATTERNS, adapter_files)]


def pinned_repository(name: str, repo_id: str) -> str:
    """The repository that classifier `name`'s @REVISION (and `run --revision`) pins: the classifier's own,
    a bundle's adapter (aegis, aegis-permissive) or guard net (instruction-data-guard), never the LlamaGuard
    base, which is taken at main."""
    return _repositories(name, repo_id, "main")[-1][0]
