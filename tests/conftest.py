"""Root test fixtures: tiny classifiers in the exact public checkpoint layout, and small topic corpora.

Fixtures (names are stable; other test modules rely on them):

- `tiny_domain_model` (session) -> Path: a checkpoint directory with the 26 `DOMAIN_LABELS` of
  nvidia/domain-classifier; its config.json has `base_model` = the absolute path of a sibling
  directory `<dir>-base` that holds only the backbone's config.json (like microsoft/deberta-v3-base).
- `tiny_quality_model` (session) -> Path: `QUALITY_LABELS` (High, Low, Medium in id order); its
  config.json carries the architecture inline (`model_type` ...), no base_model.
- `topic_corpus` (function) -> Path: a fresh directory with `shard-00.jsonl`, `shard-01.jsonl`,
  `shard-02.jsonl` (20, 15 and 10 rows) of `synthetic_corpus` documents over `DOMAIN_LABELS`; each
  row is {"id": "<shard>-<n>", "text": ..., "topic": <the label the text was worded from>}.

Every test module must end with no Dask worker child process of its own left alive
(`no_worker_outlives_its_module`, autouse): module-scoped clusters are allowed, as they close before it checks.

The Dask settings that the package sets process-wide by design (tests/process_state.py: `PROCESS_WIDE_DASK_SETTINGS`) are put back
after each test and each module (`process_wide_dask_settings_per_test`/`_per_module`, autouse); so is the
logging that the CLI's `main()` configures for its process (`process_wide_logging_per_test`, autouse).

The two models are read-only for tests: copy a directory before changing anything in it. They are
built once (a few seconds each) and reused across sessions from `<repo>/.cache/tiny-models/<key>`,
where the key covers the builder's parameters and source, the package and library versions; a fresh
clone builds them on first use. `HPC_CLASSIFY_TINY_MODEL_CACHE` overrides the cache directory; an
unwritable cache falls back to a per-session temporary directory.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# Registered here, defined in tests/process_state.py: what each test and module must put back or end.
from process_state import (  # noqa: F401, E402
    distributed_logging_in_place,
    no_distributed_log_handler_outlives_its_module,
    no_worker_outlives_its_module,
    process_wide_dask_settings_per_module,
    process_wide_dask_settings_per_test,
    process_wide_logging_per_test,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    # compile="auto" is eager today, but HPC_CLASSIFY_COMPILE=on in a site's environment would make every
    # engine the suite builds, in every Dask/Slurm worker too, compile for tens of seconds on 2 cores:
    # pinned off unless set explicitly (=on runs the whole suite compiled). The compile tests
    # (tests/unit/test_compiled.py) ask for compile=True themselves.
    os.environ.setdefault("HPC_CLASSIFY_COMPILE", "off")


_COMPLETE = ".complete"


def _cache_key(params: dict[str, Any]) -> str:
    import tokenizers
    import torch
    import transformers

    import hpc_classify
    from hpc_classify.models import head, tiny

    parts = {
        "params": params,
        "versions": [
            hpc_classify.__version__,
            torch.__version__,
            transformers.__version__,
            tokenizers.__version__,
        ],
        "source": [hashlib.sha256(Path(m.__file__).read_bytes()).hexdigest() for m in (tiny, head)],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def _cached_build(cache_root: Path, name: str, params: dict[str, Any], build: Callable[[Path], Any]) -> Path:
    """Build into `<cache_root>/<name>-<key>/model` once; a lock file serialises concurrent sessions and
    a `.complete` file (written last) tells a finished build from an interrupted one."""
    entry = cache_root / f"{name}-{_cache_key(params)}"
    model_dir = entry / "model"
    cache_root.mkdir(parents=True, exist_ok=True)
    with open(cache_root / f".{entry.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (entry / _COMPLETE).exists():
            shutil.rmtree(entry, ignore_errors=True)
            build(model_dir)
            (entry / _COMPLETE).write_text("ok\n")
    return model_dir


def _tiny_model(tmp_path_factory: pytest.TempPathFactory, name: str, **params: Any) -> Path:
    from hpc_classify.models.tiny import DOMAIN_LABELS, QUALITY_LABELS, build_tiny_checkpoint

    labels = {"domain": DOMAIN_LABELS, "quality": QUALITY_LABELS}[name]

    def build(out: Path) -> Path:
        return build_tiny_checkpoint(out, labels, **params)

    cache_root = Path(os.environ.get("HPC_CLASSIFY_TINY_MODEL_CACHE") or REPO_ROOT / ".cache" / "tiny-models")
    try:
        return _cached_build(cache_root, name, {"labels": labels, **params}, build)
    except OSError:  # read-only checkout, full disk: build for this session only
        return build(tmp_path_factory.mktemp(f"tiny-{name}") / "model")


@pytest.fixture(scope="session")
def tiny_domain_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_model(tmp_path_factory, "domain", seed=0, base_model_as="dir")


@pytest.fixture(scope="session")
def tiny_quality_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_model(tmp_path_factory, "quality", seed=0, base_model_as="inline")


@pytest.fixture
def topic_corpus(tmp_path: Path) -> Path:
    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    root = tmp_path / "topic-corpus"
    root.mkdir()
    for shard, rows in enumerate((20, 15, 10)):
        texts, label_ids = synthetic_corpus(rows, DOMAIN_LABELS, seed=100 + shard)
        lines = [
            json.dumps({"id": f"{shard:02d}-{n}", "text": text, "topic": DOMAIN_LABELS[label]})
            for n, (text, label) in enumerate(zip(texts, label_ids, strict=True))
        ]
        (root / f"shard-{shard:02d}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


USER_PACKAGE = REPO_ROOT / "tests" / "user_package"
TOXIC_TOPICS = 13  # documents worded from the first 13 domain topics are "toxic" for the user model


@pytest.fixture(scope="session")
def user_package_path() -> str:
    """`tests/user_package` (the importable `mylab` package), put on sys.path and PYTHONPATH for the
    session so that the driver, its Dask workers and Slurm jobs import `mylab.toxicity` alike."""
    import sys

    path = str(USER_PACKAGE)
    if path not in sys.path:
        sys.path.insert(0, path)
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (path, os.environ.get("PYTHONPATH")) if p)
    return path


@pytest.fixture(scope="session")
def tiny_toxicity_model(tmp_path_factory: pytest.TempPathFactory, tiny_domain_model: Path) -> Path:
    """A Hugging Face `DebertaV2ForSequenceClassification` directory (`save_pretrained` layout) with labels
    non_toxic/toxic, trained a few dozen steps so that its predictions follow the documents' topics. It
    copies the tiny domain model's tokenizer files, so the two share one tokenization in a joint run."""
    import torch
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2ForSequenceClassification

    from hpc_classify.models.tiny import DOMAIN_LABELS, one_torch_thread, synthetic_corpus

    out = tmp_path_factory.mktemp("toxicity-model")
    for name in tiny_domain_model.iterdir():
        if "token" in name.name or name.suffix == ".model":
            shutil.copy(name, out / name.name)
    tokenizer = AutoTokenizer.from_pretrained(out)
    torch.manual_seed(0)
    config = DebertaV2Config(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        relative_attention=True,
        pos_att_type=["p2c", "c2p"],
        position_buckets=64,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        position_biased_input=False,
        id2label={0: "non_toxic", 1: "toxic"},
        label2id={"non_toxic": 0, "toxic": 1},
    )
    model = DebertaV2ForSequenceClassification(config)
    texts, topics = synthetic_corpus(400, DOMAIN_LABELS, seed=7)
    targets = torch.tensor([int(topic < TOXIC_TOPICS) for topic in topics])
    encoded = tokenizer(texts, truncation=True, max_length=64, padding="max_length", return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    model.train()
    with one_torch_thread():  # the same float reductions, hence the same weights, on every machine
        for _ in range(40):
            idx = torch.randint(len(texts), (32,), generator=generator)
            loss = model(
                input_ids=encoded["input_ids"][idx],
                attention_mask=encoded["attention_mask"][idx],
                labels=targets[idx],
            ).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval().save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_fineweb_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HuggingFaceFW/fineweb-edu-classifier's layout: a trained tiny BERT regressor (tests/family_models.py)."""
    from family_models import build_fineweb_regressor

    from hpc_classify.models.tiny import one_torch_thread

    with one_torch_thread():  # the same float reductions, hence the same weights, on every machine
        return build_fineweb_regressor(tmp_path_factory.mktemp("fineweb") / "model")


@pytest.fixture(scope="session")
def tiny_content_type_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nvidia/content-type-classifier-deberta's layout (the domain classifier's), its 11 labels."""
    from family_models import CONTENT_TYPE_LABELS

    from hpc_classify.models.tiny import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("content-type") / "model", CONTENT_TYPE_LABELS)


@pytest.fixture(scope="session")
def tiny_prompt_complexity_model(tmp_path_factory: pytest.TempPathFactory, tiny_domain_model: Path) -> Path:
    """nvidia/prompt-task-and-complexity-classifier's layout: backbone + 8 heads, random weights."""
    from family_models import build_prompt_complexity

    return build_prompt_complexity(tmp_path_factory.mktemp("prompt-complexity") / "model", tiny_domain_model)


@pytest.fixture(scope="session")
def tiny_llama_guard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base, adapter): meta-llama/LlamaGuard-7b's layout as a tiny trained Llama, and an Aegis-style LoRA
    adapter made with peft (tests/aegis_models.py)."""
    from aegis_models import build_tiny_llama_guard

    from hpc_classify.models.tiny import one_torch_thread

    root = tmp_path_factory.mktemp("tiny-llama-guard")
    with one_torch_thread():
        return build_tiny_llama_guard(root / "base", root / "adapter")


@pytest.fixture(scope="session")
def tiny_guard_net(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """nvidia/instruction-data-guard's layout (config.json, model.safetensors) for the tiny Llama's width."""
    from aegis_models import build_tiny_guard_net

    return build_tiny_guard_net(tmp_path_factory.mktemp("tiny-guard") / "guard", input_dim=32)
