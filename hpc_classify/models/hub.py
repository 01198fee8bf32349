"""Finding a classifier's files: a local directory, or the Hugging Face cache/hub.

Compute nodes are usually offline. Everything here reads `HF_HUB_OFFLINE`, `HF_HOME` and
`HF_HUB_CACHE` when called, not when imported: huggingface_hub freezes them at its own import,
which would ignore a value set later (by a test, a modulefile sourced in-process, a launcher).
Every hub failure becomes one `ModelNotAvailableError` that names the model and the command that
pre-fetches it, instead of a stack of hub exceptions.
"""

from __future__ import annotations

import difflib
import itertools
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hpc_classify.errors import CacheAccessError, CheckpointFormatError, ModelNotAvailableError
from hpc_classify.models.checkpoint_meta import CHECKPOINT_FILES, in_hub_snapshot, missing_file_hint
from hpc_classify.models.registry_defaults import DEFAULT_MODELS

logger = logging.getLogger(__name__)

# Exactly the files `load_classifier_checkpoint` reads, so that fetch-models pre-fetches no more
# (never a pytorch_model.bin duplicate, README images, ONNX exports) and no less.
CLASSIFIER_FILE_PATTERNS: tuple[str, ...] = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "*.model",  # sentencepiece (spm.model)
    "vocab.txt",
    "vocab.json",
    "merges.txt",
)

# Of a base model (e.g. microsoft/deberta-v3-base) only its configuration is ever needed.
BASE_CONFIG_FILE = "config.json"

_TRUE = {"1", "true", "yes", "on"}


def offline_variable() -> str | None:
    """The variable that makes the hub client offline now, as huggingface_hub reads it: `HF_HUB_OFFLINE`
    when set (so `HF_HUB_OFFLINE=0` overrides a site's `TRANSFORMERS_OFFLINE=1`), else
    `TRANSFORMERS_OFFLINE`; None when online."""
    name = "HF_HUB_OFFLINE" if os.environ.get("HF_HUB_OFFLINE") else "TRANSFORMERS_OFFLINE"
    return name if os.environ.get(name, "").strip().lower() in _TRUE else None


def hub_offline() -> bool:
    """Whether the hub must not be contacted (see `offline_variable`), read now."""
    return offline_variable() is not None


def hub_cache_dir() -> Path:
    """The hub cache directory as the environment says now (same precedence as huggingface_hub)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.path.expandvars(os.environ[name])).expanduser()
    if os.environ.get("HF_HOME"):
        home = Path(os.path.expandvars(os.environ["HF_HOME"])).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        home = Path(xdg) / "huggingface"
    return home / "hub"


def offline_token(offline: bool, token: str | bool | None = None) -> str | bool | None:
    """The `token=` of a hub call: False offline, where the cache needs no authentication, so that the hub
    client does not read the login token file (`$HF_HOME/token`): one another user's login left unreadable
    (0600) in a shared HF_HOME would fail every cache look-up with PermissionError. Online, `token` as given
    (None: the hub client's default, HF_TOKEN or the `hf auth login` token)."""
    return False if offline else token


def _looks_like_path(model: str) -> bool:
    """Whether `model` is meant as a directory on disk rather than a hub id ("name" or "org/name").

    `org/name` is ambiguous: it is taken as a local path when `org` is a local directory (a typo'd
    `demo-output/tiny-model` then says the directory does not exist, instead of failing a hub download)."""
    if model.startswith((os.sep, ".", "~")) or model.count("/") > 1 or (os.sep != "/" and os.sep in model):
        return True
    first, slash, _ = model.partition("/")
    return bool(slash) and os.path.isdir(first) and not in_hub_cache(model)


def in_hub_cache(model: str) -> bool:
    """Whether the hub cache holds a snapshot directory of the hub id `model` (then it is one, whatever
    local directory shares its organisation's name: an `nvidia/` folder beside the job)."""
    return (hub_cache_dir() / f"models--{model.replace('/', '--')}" / "snapshots").is_dir()


def _missing_dir_message(model: str) -> str:
    """'model directory ... does not exist', with the closest checkpoint directory beside it, if any."""
    path = Path(model).expanduser()
    parent = path.parent if path.parent.is_dir() else None
    siblings = sorted(p.name for p in parent.iterdir() if (p / "config.json").is_file()) if parent else []
    close = difflib.get_close_matches(path.name, siblings, n=1)
    suggestion = f" (did you mean {os.path.join(os.path.dirname(model), close[0])}?)" if close else ""
    return f"model directory {model!r} does not exist{suggestion}"


# A sentence advising one of the hub client's own arguments: `pass 'local_files_only=False'`, `set
# 'local_files_only' to False`.
_NAMES_AN_ARGUMENT = re.compile(r"\w=\w|'\w+_\w+'")


def hub_failure_reason(error: Exception) -> str:
    """The hub client's error in one line, without its advice about its own keyword arguments
    (`pass 'local_files_only=False'`), which is no option of ours."""
    first_line = str(error).splitlines()[0] if str(error) else ""
    sentences = [s for s in re.split(r"(?<=\.)\s+", first_line) if not _NAMES_AN_ARGUMENT.search(s)]
    return f"{type(error).__name__}: {' '.join(sentences)}".rstrip(": ")


def fetch_models_command(classifier: str, revision: str | None = None, cache: Path | None = None) -> str:
    """The `hpc-classify fetch-models` command line that fetches what `classifier` (a name or hub id) loads."""
    revision_option = f" --revision {revision}" if revision else ""
    cache_option = f" --cache {cache}" if cache else ""
    return f"hpc-classify fetch-models --classifier {classifier}{revision_option}{cache_option}"


# The hpc-classify module sets HF_HUB_OFFLINE=1, and offline `fetch-models` only checks the cache.
_ONLINE_PREFIX = "HF_HUB_OFFLINE=0 "


def _fetch_hint(model: str, revision: str | None, *, base: bool = False) -> str:
    name = {hub_id: name for name, hub_id in DEFAULT_MODELS.items()}.get(model, model)
    # A base model is fetched with the classifier that names it (its config only): say so beside the command.
    command = (
        f"`{_ONLINE_PREFIX}{fetch_models_command('NAME')}` for the classifier whose base model it is (it fetches that config too)"
        if base
        else f"`{_ONLINE_PREFIX}{fetch_models_command(name, revision)}`"
    )
    return (
        f"on a login node with internet, run {command} "
        f"with the same Hugging Face cache as the compute nodes (this one: {hub_cache_dir()}, from "
        "HF_HUB_CACHE or HF_HOME), or pass a local directory holding the checkpoint"
    )


def _not_available(
    what: str, model: str, revision: str | None, error: Exception, *, base: bool = False
) -> ModelNotAvailableError:
    from huggingface_hub.errors import LocalEntryNotFoundError

    from hpc_classify.models.cache_access import cache_problem

    # A cache this user may not read (fetched under umask 077), or a full disk: no fetch-models would help.
    problem = cache_problem(hub_cache_dir(), model, revision, error)
    if problem is not None:
        return CacheAccessError(
            f"{what} {model!r} (revision {revision or 'main'}) is not available: {problem.reason}",
            hint=problem.hint,
        )
    if hub_offline():
        # The hub's reason, unless it only says that nothing is there (an incomplete snapshot says more).
        reason = "" if type(error) is LocalEntryNotFoundError else f" ({hub_failure_reason(error)})"
        where = (
            f"not in the Hugging Face cache {hub_cache_dir()}, and offline ({offline_variable()}=1){reason}"
        )
    else:
        where = f"not in the Hugging Face cache {hub_cache_dir()} and not downloadable ({hub_failure_reason(error)})"
    # An "org/name" may have been meant as a local path: say that no such directory exists either.
    local = "no local directory of that name, " if "/" in model else ""
    return ModelNotAvailableError(
        f"{what} {model!r} (revision {revision or 'main'}) is not available: {local}{where}",
        hint=_fetch_hint(model, revision, base=base),
    )


def is_local_model(model: str | os.PathLike[str]) -> bool:
    """`model` names a local directory (else a hub id); raises as resolve_model_dir does for a missing path."""
    return _local_dir(os.fspath(model)) is not None


def snapshot_commit(model: str | os.PathLike[str], model_dir: Path) -> str | None:
    """The commit of the directory `resolve_model_dir(model, ...)` returned: the hub cache names each snapshot
    directory by its commit. None for a local directory, which has no commit."""
    return None if is_local_model(model) else Path(model_dir).name


def _local_dir(model: str, config_file: str | None = None) -> Path | None:
    """`model` as a local directory (None: a hub id). With `config_file`, a directory without it is refused:
    it is no checkpoint (a corpus directory given as --model), and no fetch-models would change that."""
    path = Path(model).expanduser()
    if path.is_dir():
        if config_file is not None and not (path / config_file).is_file():
            contents, inner = _survey(path, config_file)
            if in_hub_snapshot(path):  # an incomplete snapshot, fetched or copied: fetch-models completes it
                hint = missing_file_hint(path)
            elif inner:
                hint = f"pass the checkpoint directory itself, e.g. {os.path.join(model, inner)}"
            else:
                hint = _checkpoint_dir_hint(config_file)
            raise ModelNotAvailableError(
                f"{model} is not a checkpoint directory (no {config_file}; {contents})", hint=hint
            )
        return path.resolve()
    if path.is_file():
        parent = os.path.dirname(model) or "."
        its_dir = Path(parent).expanduser() / (config_file or "config.json")
        mean = f" (did you mean its directory {parent}?)" if its_dir.is_file() else ""
        raise ModelNotAvailableError(
            f"{model} is a file, not a checkpoint directory{mean}",
            hint=_checkpoint_dir_hint(config_file or "config.json"),
        )
    if _looks_like_path(model):
        hint = "pass an existing local checkpoint directory or a hub id such as nvidia/domain-classifier"
        first, slash, rest = model.partition("/")
        if slash and "/" not in rest and not model.startswith((".", "~", os.sep)):  # could be org/name
            hint = (
                f"pass an existing local checkpoint directory ({model} is taken as a path, not a hub id, "
                f"because {first} is a local directory)"
            )
        raise ModelNotAvailableError(_missing_dir_message(model), hint=hint)
    return None


def _checkpoint_dir_hint(config_file: str) -> str:
    if config_file != "config.json":  # another layout (a LoRA adapter)
        return f"pass a directory holding {config_file} and the weights beside it, or a hub id"
    example = "nvidia/domain-classifier"
    return f"pass a checkpoint directory (it holds {CHECKPOINT_FILES}) or a hub id such as {example}"


def _survey(path: Path, config_file: str, limit: int = 10_000) -> tuple[str, str | None]:
    """What a directory that is no checkpoint holds, in short ('it holds 3 .jsonl files, 1 directory'), and
    the first checkpoint directory inside it, if any. Its first `limit` entries only: a corpus may hold
    millions."""
    files: Counter[str] = Counter()
    directories: list[str] = []
    with os.scandir(path) as entries:
        for entry in itertools.islice(entries, limit):
            if entry.is_dir():
                directories.append(entry.name)
            else:
                files[Path(entry.name).suffix or "extension-less"] += 1
    common = sorted(files.items(), key=lambda kind_count: (-kind_count[1], kind_count[0]))[:3]
    parts = [f"{n} {kind} file{'s' * (n > 1)}" for kind, n in common]
    parts += ["other files"] if len(files) > 3 else []
    count = len(directories)
    parts += [f"{count} director{'ies' if count > 1 else 'y'}"] if count else []
    inner = next((d for d in sorted(directories)[:100] if (path / d / config_file).is_file()), None)
    return (f"it holds {', '.join(parts)}" if parts else "it is empty"), inner


def resolve_model_dir(
    model: str | os.PathLike[str],
    revision: str | None = None,
    *,
    allow_patterns: Sequence[str] | None = None,
    token: str | bool | None = None,
    config_file: str = "config.json",
) -> Path:
    """The directory holding a classifier checkpoint: `model` itself if it is a local directory, else the
    hub snapshot (cache first; downloads only the files in `CLASSIFIER_FILE_PATTERNS` when online).

    `allow_patterns` replaces `CLASSIFIER_FILE_PATTERNS` for models of another layout (a causal LM, a
    LoRA adapter); `token` is the Hugging Face access token for gated or private repositories (None: the
    hub client's default, i.e. HF_TOKEN or the `hf auth login` token; never read offline). A local path
    must be a directory holding `config_file` (the file every layout's loader reads first)."""
    model = os.fspath(model)
    local = _local_dir(model, config_file)
    if local is not None:
        if revision:
            logger.debug("model %s is a local directory: revision %s ignored", local, revision)
        return local
    from huggingface_hub import snapshot_download  # lazy: importing the hub client is not free

    offline = hub_offline()
    try:
        path = snapshot_download(
            model,
            revision=revision,
            cache_dir=hub_cache_dir(),
            allow_patterns=list(CLASSIFIER_FILE_PATTERNS if allow_patterns is None else allow_patterns),
            local_files_only=offline,
            token=offline_token(offline, token),
        )
    except Exception as error:  # noqa: BLE001 — every hub failure means the same thing to the user
        raise _not_available("classifier", model, revision, error) from None
    logger.debug("model %s@%s resolved to %s", model, revision or "main", path)
    return Path(path)


def read_json_file(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`; a missing or malformed file is a CheckpointFormatError naming it."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointFormatError(f"{what}: {path} is missing", hint=missing_file_hint(path)) from None
    except (OSError, ValueError) as error:
        raise CheckpointFormatError(f"{what}: {path} is not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise CheckpointFormatError(f"{what}: {path} holds a {type(data).__name__}, expected a JSON object")
    return data


def resolve_base_config(base_model: str, revision: str | None = None) -> dict[str, Any]:
    """The configuration dict of a base model (a local directory or config.json file, or a hub id whose
    config.json is taken from the cache or the hub). Never touches the base model's weights."""
    path = Path(base_model).expanduser()
    if path.is_file():
        return read_json_file(path, f"base model config {base_model}")
    local = _local_dir(base_model)
    if local is not None:
        return read_json_file(local / BASE_CONFIG_FILE, f"base model {base_model}")
    from huggingface_hub import hf_hub_download

    offline = hub_offline()
    try:
        downloaded = hf_hub_download(
            base_model,
            BASE_CONFIG_FILE,
            revision=revision,
            cache_dir=hub_cache_dir(),
            local_files_only=offline,
            token=offline_token(offline),
        )
    except Exception as error:  # noqa: BLE001
        raise _not_available("base model config of", base_model, revision, error, base=True) from None
    return read_json_file(Path(downloaded), f"base model {base_model}")
