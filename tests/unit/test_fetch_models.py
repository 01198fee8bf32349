"""fetch-models against a local stand-in for the hub (no network).

The stand-in replaces only the two download calls (`snapshot_download`, `hf_hub_download`) while online: it
copies from a fake-hub directory into the real cache layout (`models--org--name/{blobs,snapshots/<sha>,refs}`).
Everything offline — the checks of `fetch-models` under HF_HUB_OFFLINE=1 and the checkpoint loader — runs the
real huggingface_hub client on that cache, so a layout mistake here would fail there.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import huggingface_hub
import pytest
import torch

from hpc_classify.cli.main import main
from hpc_classify.errors import CheckpointFormatError, ConfigError, ModelNotAvailableError
from hpc_classify.models.fetch import fetch_models
from hpc_classify.models.tiny import DOMAIN_LABELS

DOMAIN_REPO = "nvidia/domain-classifier"
BASE_REPO = "fake-org/tiny-deberta-base"
COMMIT_NEW = "a" * 40
COMMIT_OLD = "b" * 40
BASE_COMMIT = "c" * 40
CLASSIFIER_FILES = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"}
# Files a real classifier repository also holds that the cache must never receive.
JUNK_FILES = {"pytorch_model.bin": b"duplicate weights", "README.md": b"# card", "onnx/model.onnx": b"onnx"}


class FakeHub:
    """repo_id -> {commit -> {relpath -> bytes}}, refs (branch/tag -> commit), and a log of downloads."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}
        self.refs: dict[str, dict[str, str]] = {}
        self.downloaded: list[tuple[str, str]] = []

    def add(self, repo_id: str, commit: str, files: dict[str, bytes], refs: tuple[str, ...] = ()) -> None:
        self.repos.setdefault(repo_id, {})[commit] = files
        for ref in refs:
            self.refs.setdefault(repo_id, {})[ref] = commit

    def _resolve(self, repo_id: str, revision: str | None) -> str:
        from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

        if repo_id not in self.repos:
            raise RepositoryNotFoundError(f"404 Client Error: repository {repo_id} not found", response=None)
        revision = revision or "main"
        if revision in self.repos[repo_id]:
            return revision
        if revision in self.refs.get(repo_id, {}):
            return self.refs[repo_id][revision]
        raise RevisionNotFoundError(f"404 Client Error: revision {revision} not found", response=None)

    def _store(self, cache: Path, repo_id: str, revision: str | None, commit: str, name: str) -> Path:
        repo_dir = Path(cache) / f"models--{repo_id.replace('/', '--')}"
        data = self.repos[repo_id][commit][name]
        blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo_dir / "snapshots" / commit / name
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(Path("../" * (name.count("/") + 2)) / "blobs" / blob.name)  # as the hub client does
        if (revision or "main") != commit:
            (repo_dir / "refs").mkdir(exist_ok=True)
            (repo_dir / "refs" / (revision or "main")).write_text(commit)
        self.downloaded.append((repo_id, name))
        return link

    def snapshot_download(self, repo_id, *, revision=None, cache_dir=None, allow_patterns=None, **kw):
        if kw.get("local_files_only"):
            return REAL_SNAPSHOT_DOWNLOAD(repo_id, revision=revision, cache_dir=cache_dir, **kw)
        commit = self._resolve(repo_id, revision)
        names = list(
            huggingface_hub.utils.filter_repo_objects(
                self.repos[repo_id][commit], allow_patterns=allow_patterns
            )
        )
        for name in names:
            self._store(cache_dir, repo_id, revision, commit, name)
        return str(Path(cache_dir) / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit)

    def hf_hub_download(self, repo_id, filename, *, revision=None, cache_dir=None, **kw):
        if kw.get("local_files_only"):
            return REAL_HF_HUB_DOWNLOAD(repo_id, filename, revision=revision, cache_dir=cache_dir, **kw)
        commit = self._resolve(repo_id, revision)
        return str(self._store(cache_dir, repo_id, revision, commit, filename))


REAL_SNAPSHOT_DOWNLOAD = huggingface_hub.snapshot_download
REAL_HF_HUB_DOWNLOAD = huggingface_hub.hf_hub_download


@pytest.fixture
def fake_hub(tiny_domain_model: Path, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    files = {p.name: p.read_bytes() for p in tiny_domain_model.iterdir() if p.is_file()}
    assert set(files) == CLASSIFIER_FILES  # the fixture's public layout, as this test expects it
    config = json.loads(files["config.json"])
    base_config = Path(config["base_model"], "config.json").read_bytes()
    config["base_model"] = BASE_REPO  # like "microsoft/deberta-v3-base" in the public checkpoints
    files["config.json"] = json.dumps(config).encode()
    hub = FakeHub()
    hub.add(DOMAIN_REPO, COMMIT_NEW, {**files, **JUNK_FILES}, refs=("main",))
    old = dict(files, **{"config.json": json.dumps({**config, "fc_dropout": 0.1}).encode()})
    hub.add(DOMAIN_REPO, COMMIT_OLD, old, refs=("v1.0",))
    base_weights = {"model.safetensors": b"BASE WEIGHTS", "pytorch_model.bin": b"BASE WEIGHTS"}
    hub.add(BASE_REPO, BASE_COMMIT, {"config.json": base_config, **base_weights}, refs=("main",))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.hf_hub_download)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return hub


def _snapshot_files(cache: Path, repo_id: str, commit: str) -> set[str]:
    root = cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / commit
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_fetch_puts_classifier_files_and_only_the_base_config_in_the_cache(fake_hub, tmp_path):
    cache = tmp_path / "hub"
    [item] = fetch_models(["domain"], cache_dir=cache)

    assert (item.name, item.repo_id, item.revision, item.commit) == (
        "domain",
        DOMAIN_REPO,
        "main",
        COMMIT_NEW,
    )
    assert item.path == cache / "models--nvidia--domain-classifier" / "snapshots" / COMMIT_NEW
    assert set(item.files) == CLASSIFIER_FILES
    assert (item.base_model, item.base_commit) == (BASE_REPO, BASE_COMMIT)
    assert _snapshot_files(cache, DOMAIN_REPO, COMMIT_NEW) == CLASSIFIER_FILES  # no .bin, README, onnx
    assert _snapshot_files(cache, BASE_REPO, BASE_COMMIT) == {"config.json"}  # never the base weights
    base_blobs = list((cache / "models--fake-org--tiny-deberta-base" / "blobs").iterdir())
    assert [b.read_bytes() for b in base_blobs if b"BASE WEIGHTS" in b.read_bytes()] == []
    assert (cache / "models--nvidia--domain-classifier" / "refs" / "main").read_text() == COMMIT_NEW
    assert sorted(fake_hub.downloaded) == sorted(
        [(DOMAIN_REPO, name) for name in CLASSIFIER_FILES] + [(BASE_REPO, "config.json")]
    )


def test_offline_loader_reads_the_fetched_cache_by_hub_id(fake_hub, tiny_domain_model, tmp_path, monkeypatch):
    from hpc_classify.models.checkpoint import load_classifier_checkpoint

    fetch_models(["domain"], cache_dir=tmp_path / "hf" / "hub")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", REAL_SNAPSHOT_DOWNLOAD)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", REAL_HF_HUB_DOWNLOAD)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    from_hub = load_classifier_checkpoint(DOMAIN_REPO)
    local = load_classifier_checkpoint(str(tiny_domain_model))

    assert from_hub.labels == DOMAIN_LABELS
    assert (
        from_hub.model_dir
        == tmp_path / "hf" / "hub" / "models--nvidia--domain-classifier" / "snapshots" / COMMIT_NEW
    )
    batch = local.tokenizer(["a match report on the league final"], return_tensors="pt")
    with torch.no_grad():
        expected = local.model(batch["input_ids"], batch["attention_mask"])
        got = from_hub.model(batch["input_ids"], batch["attention_mask"])
    assert torch.equal(got, expected)


def test_offline_fetch_checks_the_cache_and_downloads_nothing(fake_hub, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as missing:
        fetch_models(["domain"], cache_dir=cache)
    message = str(missing.value)
    assert f"cannot fetch classifier '{DOMAIN_REPO}' at revision 'main' into {cache}" in message
    assert (
        f"HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier domain --revision main --cache {cache}`"
        in message
    )
    assert fake_hub.downloaded == []

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    fetch_models(["domain"], cache_dir=cache)
    fake_hub.downloaded.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    [item] = fetch_models(["domain"], cache_dir=cache)
    assert (item.commit, item.base_commit, fake_hub.downloaded) == (COMMIT_NEW, BASE_COMMIT, [])


def test_revisions_pin_per_classifier_and_by_tag(fake_hub, tmp_path):
    cache = tmp_path / "hub"
    pinned, tagged = fetch_models([f"domain@{COMMIT_OLD}", DOMAIN_REPO], cache_dir=cache, revision="v1.0")

    assert (pinned.revision, pinned.commit) == (COMMIT_OLD, COMMIT_OLD)
    assert (tagged.name, tagged.revision, tagged.commit) == (DOMAIN_REPO, "v1.0", COMMIT_OLD)
    assert json.loads((pinned.path / "config.json").read_text())["fc_dropout"] == 0.1
    assert (cache / "models--nvidia--domain-classifier" / "refs" / "v1.0").read_text() == COMMIT_OLD


@pytest.mark.parametrize(
    ("spec", "revision", "needle"),
    [
        (
            "nobody/missing-classifier",
            None,
            "cannot fetch classifier 'nobody/missing-classifier' at revision 'main'",
        ),
        (
            "domain",
            "no-such-branch",
            "cannot fetch classifier 'nvidia/domain-classifier' at revision 'no-such-branch'",
        ),
    ],
)
def test_hub_errors_become_one_model_not_available_error(fake_hub, tmp_path, spec, revision, needle):
    with pytest.raises(ModelNotAvailableError) as error:
        fetch_models([spec], cache_dir=tmp_path / "hub", revision=revision)
    assert needle in str(error.value)
    assert "HINT: check the name and revision on the Hugging Face hub" in str(error.value)


def test_hints_name_what_was_asked_for_not_the_repository_that_failed(fake_hub, tmp_path, monkeypatch):
    """`--classifier microsoft/deberta-v3-base` (a base model) or `--classifier meta-llama/LlamaGuard-7b` (a
    part of `aegis`) cannot work: the hint repeats the classifier and the revision the user asked for."""
    import shutil

    from hpc_classify.models import llama_guard as lg

    cache = tmp_path / "hub"
    fetch_models(["domain"], cache_dir=cache, revision="v1.0")
    shutil.rmtree(cache / "models--fake-org--tiny-deberta-base")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotAvailableError) as error:
        fetch_models(["domain"], cache_dir=cache, revision="v1.0")
    assert f"cannot fetch base model config of {DOMAIN_REPO}: '{BASE_REPO}'" in str(error.value)
    assert error.value.hint.endswith(
        f"`HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier domain --revision v1.0 --cache {cache}`"
    )

    with pytest.raises(ModelNotAvailableError) as error:
        fetch_models(["aegis@r1"], cache_dir=cache)
    assert f"cannot fetch aegis repository '{lg.LLAMA_GUARD_BASE}' at revision 'main'" in str(error.value)
    assert (
        f"`HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier aegis --revision r1 --cache {cache}`"
        in (error.value.hint)
    )
    assert f"{lg.LLAMA_GUARD_BASE} is gated" in error.value.hint and "HF_TOKEN" in error.value.hint

    def gated(repo_id, revision):
        from huggingface_hub.errors import GatedRepoError

        raise GatedRepoError(f"401 Client Error: access to model {repo_id} is restricted", response=None)

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(fake_hub, "_resolve", gated)
    with pytest.raises(ModelNotAvailableError) as error:
        fetch_models(["aegis@r1"], cache_dir=cache)
    assert error.value.hint.startswith(f"{lg.LLAMA_GUARD_BASE} is gated: accept its license on https://")
    assert error.value.hint.endswith(
        f"then run `hpc-classify fetch-models --classifier aegis --revision r1 --cache {cache}` again"
    )


def test_unreachable_hub_is_a_model_not_available_error(tmp_path, monkeypatch):
    # The real client against a closed local port: what a compute node without internet sees.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    with pytest.raises(
        ModelNotAvailableError, match=r"cannot fetch classifier 'nvidia/quality-classifier-deberta'"
    ):
        fetch_models(["quality"], cache_dir=tmp_path / "hub")


@pytest.mark.parametrize("keep", [(), ("tokenizer_config.json",)])
def test_a_repository_or_cache_without_tokenizer_files_is_incomplete(fake_hub, tmp_path, monkeypatch, keep):
    """The loader refuses such a checkpoint (transformers would build an empty tokenizer): fetch-models says
    so on the login node, and its offline check of the cache says so before a job is submitted."""
    cache = tmp_path / "hub"
    tokenizer = {"tokenizer.json", "tokenizer_config.json"} - set(keep)
    files = {k: v for k, v in fake_hub.repos[DOMAIN_REPO][COMMIT_NEW].items() if k not in tokenizer}
    fake_hub.add("org/no-tokenizer", COMMIT_NEW, files, refs=("main",))
    needle = r"the repository has no tokenizer file \(tokenizer.json, \*.model, vocab.txt, vocab.json\)"
    with pytest.raises(CheckpointFormatError, match=f"^org/no-tokenizer@main: {needle}") as error:
        fetch_models(["org/no-tokenizer"], cache_dir=cache)
    assert "spm.model" in error.value.hint

    [item] = fetch_models(["domain"], cache_dir=cache)
    for name in tokenizer:
        (item.path / name).unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointFormatError, match=f"^{DOMAIN_REPO}@main: {needle}"):
        fetch_models(["domain"], cache_dir=cache)


def test_a_bundle_takes_its_tokenizer_from_the_llama_guard_base(fake_hub, tmp_path):
    from hpc_classify.models import llama_guard as lg

    base = {"config.json": b"{}", "model.safetensors": b"W", "tokenizer.model": b"T"}
    adapter = {"adapter_config.json": b"{}", lg.ADAPTER_WEIGHTS: b"A"}  # no tokenizer: not needed
    fake_hub.add(lg.LLAMA_GUARD_BASE, COMMIT_NEW, base, refs=("main",))
    fake_hub.add(lg.AEGIS_DEFENSIVE, COMMIT_NEW, adapter, refs=("main",))
    assert [item.repo_id for item in fetch_models(["aegis"], cache_dir=tmp_path / "hub")] == [
        lg.LLAMA_GUARD_BASE,
        lg.AEGIS_DEFENSIVE,
    ]

    del base["tokenizer.model"]
    fake_hub.add(lg.LLAMA_GUARD_BASE, COMMIT_OLD, base, refs=("main",))
    with pytest.raises(
        CheckpointFormatError, match=f"^{lg.LLAMA_GUARD_BASE}@main: the repository has no tok"
    ):
        fetch_models(["aegis"], cache_dir=tmp_path / "hub")


def test_unknown_classifier_name_is_a_config_error_before_any_download(fake_hub, tmp_path):
    with pytest.raises(
        ConfigError,
        match=r"unknown classifier 'domian'\nHINT: use one of domain, quality, multilingual-domain",
    ):
        fetch_models(["domain", "domian"], cache_dir=tmp_path / "hub")
    assert fake_hub.downloaded == []


def test_cli_prints_commits_to_pin(fake_hub, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    cache = tmp_path / "other-cache"
    assert main(["fetch-models", "--classifier", "domain", "--cache", str(cache)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"domain: {DOMAIN_REPO}@main -> commit {COMMIT_NEW}"
    assert out[1].endswith(f"; base config {BASE_REPO}@{BASE_COMMIT}")
    assert out[2] == f"pin these commits: hpc-classify fetch-models --classifier domain@{COMMIT_NEW}"
    assert out[3] == f"compute nodes must read this cache: export HF_HUB_CACHE={cache.resolve()}"


def test_cli_reports_a_missing_model_without_traceback(fake_hub, tmp_path, capsys):
    assert main(["fetch-models", "--classifier", "nobody/missing", "--cache", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hpc-classify fetch-models: error: cannot fetch classifier 'nobody/missing'")
    assert "Traceback" not in err


def test_cli_requires_a_classifier(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["fetch-models"])
    assert exit_info.value.code == 2
    assert "--classifier" in capsys.readouterr().err


def test_a_missing_base_configs_hint_is_a_command_that_works(tmp_path, monkeypatch):
    """The base model is fetched with the classifier that names it: the hint says so beside the command,
    instead of a placeholder sentence inside it (`--classifier the classifier that uses it`)."""
    from hpc_classify.models.hub import resolve_base_config

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailableError) as missing:
        resolve_base_config("microsoft/deberta-v3-base")
    assert (
        "`HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier NAME` for the classifier whose base model it is"
        in (missing.value.hint)
    )
