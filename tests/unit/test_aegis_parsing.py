"""AegisClassifier / InstructionDataGuardClassifier without a model: NeMo Curator 0.7.1's prompt, answer
parsing, labels and constructor signatures, argument checks, outputs and counts, and the error for a gated
or missing base model."""

from __future__ import annotations

import hashlib
import inspect
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from hpc_classify.classifiers.aegis import (
    AEGIS_LABELS,
    UNSAFE_CATEGORIES,
    AegisClassifier,
    InstructionDataGuardClassifier,
    format_aegis,
    parse_aegis_response,
)
from hpc_classify.classifiers.run_checks import check_classifiers
from hpc_classify.errors import ConfigError, ModelNotAvailableError
from hpc_classify.models.llama_guard import CPU_MAX_DOCUMENTS

# NeMo Curator v0.7.1 (d0cc62de), nemo_curator/utils/aegis_utils.py: sha256 of `unsafe_categories`.
NEMO_CATEGORIES_SHA256 = "ab5834f6f0e83fd79597eff3912ad225e36e13f1167fbf90ba4134ac64c181a9"
# format_aegis's f-strings, as they evaluate (their 4-space indentation is part of the prompt).
NEMO_TEMPLATE = (
    "[INST] Task: Check if there is unsafe content in 'User' messages in conversations according our safety "
    "policy with the below categories.\n\n    <BEGIN UNSAFE CONTENT CATEGORIES>\n    {categories}\n"
    "    <END UNSAFE CONTENT CATEGORIES>\n\n    <BEGIN CONVERSATION>\n\n    User: {message}\n\n"
    "<END CONVERSATION>\n\n    Provide your safety assessment for User in the above conversation:\n"
    "    - First line must read 'safe' or 'unsafe'.\n"
    "    - If unsafe, a second line must include a comma-separated list of violated categories. [/INST]"
)
DEFENSIVE = "nvidia/Aegis-AI-Content-Safety-LlamaGuard-Defensive-1.0"


@pytest.mark.parametrize(
    ("response", "label"),
    [
        ("safe", "safe"),
        (" safe \n", "safe"),
        ("safe\nO3", "safe"),
        ("unsafe\nO3", "O3"),
        ("  unsafe\n O13 \nmore", "O13"),
        ("unsafe\nO3,O4", "unknown"),
        ("unsafe\nO14", "unknown"),
        ("unsafe\nunknown", "unknown"),
        ("unsafe\nsafe", "unknown"),
        ("unsafe", "unknown"),
        ("unsafe O3", "unknown"),
        ("", "unknown"),
        ("Safe", "unknown"),
        ("\nsafe", "unknown"),
        ("garbage \u00e9\u00e8 12", "unknown"),
    ],
)
def test_responses_parse_as_nemo_does(response, label):
    assert parse_aegis_response(response) == label


def test_the_prompt_is_nemos_format_aegis():
    assert hashlib.sha256(UNSAFE_CATEGORIES.encode()).hexdigest() == NEMO_CATEGORIES_SHA256
    assert UNSAFE_CATEGORIES.startswith("O1: Violence.\nShould not\n") and UNSAFE_CATEGORIES.endswith(
        "unsafe categorie described above.\n"
    )
    assert (
        "sensitive personal characteristics like their \nrace" in UNSAFE_CATEGORIES
    )  # NeMo's trailing spaces
    for message in ["", "How do I bake bread?", "two\nlines {braces}"]:
        assert format_aegis(message) == NEMO_TEMPLATE.format(categories=UNSAFE_CATEGORIES, message=message)


def test_labels():
    assert AEGIS_LABELS == ["unknown", "safe", *(f"O{i}" for i in range(1, 14))]
    aegis = AegisClassifier(device_type="cpu")
    assert aegis.labels == aegis.get_labels() == AEGIS_LABELS
    guard = InstructionDataGuardClassifier(device_type="cpu")
    assert guard.get_labels() is None and guard.labels == []


def _nemo_part(cls, count):
    parameters = list(inspect.signature(cls).parameters.values())[:count]
    return [(p.name, p.default) for p in parameters]


def test_constructors_match_nemo_curator():
    assert _nemo_part(AegisClassifier, 12) == [
        ("aegis_variant", DEFENSIVE),
        ("token", None),
        ("filter_by", None),
        ("batch_size", 64),
        ("text_field", "text"),
        ("pred_column", "aegis_pred"),
        ("raw_pred_column", "_aegis_raw_pred"),
        ("keep_raw_pred", False),
        ("max_chars", 6000),
        ("device_type", "auto"),  # NeMo: "cuda"
        ("autocast", True),
        ("max_mem_gb", None),
    ]
    assert _nemo_part(InstructionDataGuardClassifier, 9) == [
        ("token", None),
        ("batch_size", 64),
        ("text_field", "text"),
        ("pred_column", "is_poisoned"),
        ("prob_column", "instruction_data_guard_poisoning_score"),
        ("max_chars", 6000),
        ("autocast", True),  # before device_type, as in NeMo
        ("device_type", "auto"),
        ("max_mem_gb", None),
    ]
    for cls, extra in [
        (
            AegisClassifier,
            ["model", "revision", "base_model", "device", "token_budget", "precision", "compile"],
        ),
        (
            InstructionDataGuardClassifier,
            [
                "model",
                "revision",
                "base_model",
                "aegis_adapter",
                "device",
                "token_budget",
                "precision",
                "compile",
            ],
        ),
    ]:
        keywords = [p for p in inspect.signature(cls).parameters.values() if p.kind is p.KEYWORD_ONLY]
        assert [p.name for p in keywords] == extra
        assert inspect.signature(cls).parameters["base_model"].default == "meta-llama/LlamaGuard-7b"


def test_arguments():
    aegis = AegisClassifier("my/adapter", None, ["safe", "O13"], device_type="cpu")
    assert aegis.model == aegis.aegis_variant == "my/adapter" and aegis.filter_by == ["safe", "O13"]
    assert AegisClassifier(model="/x/adapter").aegis_variant == "/x/adapter"
    assert AegisClassifier(device="cpu").device == "cpu"  # device_type's default "auto" yields to device
    guard = InstructionDataGuardClassifier(model="/g", aegis_adapter="/a", base_model="/b", revision="r1")
    assert guard.model_identity() == {
        "model": "/g",
        "revision": "r1",
        "aegis_adapter": "/a",
        "base_model": "/b",
    }
    assert AegisClassifier(token="hf_secret").model_identity() == {
        "aegis_variant": DEFENSIVE,
        "revision": None,
        "base_model": "meta-llama/LlamaGuard-7b",
    }
    with pytest.raises(ConfigError, match="filter_by names label"):
        AegisClassifier(filter_by=["O14"])
    with pytest.raises(ConfigError, match="disagree"):
        AegisClassifier("a/one", model="b/two")
    with pytest.raises(ConfigError, match="disagree"):
        AegisClassifier(device_type="cuda", device="cpu")
    with pytest.raises(ConfigError, match="keep_raw_pred"):
        AegisClassifier(keep_raw_pred="yes")
    with pytest.raises(ConfigError, match="name them apart"):  # the messages: test_own_columns.py
        check_classifiers([AegisClassifier(raw_pred_column="aegis_pred", keep_raw_pred=True)])
    with pytest.raises(ConfigError, match="name them apart"):
        check_classifiers([InstructionDataGuardClassifier(pred_column="x", prob_column="x")])
    with pytest.raises(ConfigError, match="max_mem_gb"):
        InstructionDataGuardClassifier(device_type="cpu", max_mem_gb=8)
    with pytest.raises(ConfigError, match="batch_size"):
        AegisClassifier(batch_size=0)
    with pytest.raises(ConfigError, match="base_model"):
        AegisClassifier(base_model="")
    with pytest.raises(TypeError):
        InstructionDataGuardClassifier(filter_by=["x"])  # NeMo's has no filter_by


def test_columns_counts_and_filters():
    aegis = AegisClassifier(filter_by="safe")
    assert aegis.output_columns() == ["aegis_pred"]
    raw = AegisClassifier(keep_raw_pred=True)
    assert raw.output_columns() == ["_aegis_raw_pred", "aegis_pred"]  # NeMo's order
    assert raw.output_meta() == {"aegis_pred": "str", "_aegis_raw_pred": "str"}
    guard = InstructionDataGuardClassifier()
    assert guard.output_columns() == ["instruction_data_guard_poisoning_score", "is_poisoned"]
    assert list(guard.output_meta().items()) == [
        ("instruction_data_guard_poisoning_score", "float32"),  # as NeMo's guard net returns it
        ("is_poisoned", "bool"),
    ]
    check_classifiers([raw, guard])  # no shared column

    frame = pd.DataFrame({"aegis_pred": ["safe", "O3", "unknown", "safe"]})
    counts = aegis.output_counts(frame)["aegis_pred"]
    assert list(counts) == AEGIS_LABELS and counts["safe"] == 2 and counts["O3"] == 1 and counts["O1"] == 0
    assert aegis.filter_mask(frame).tolist() == [True, False, False, True]
    assert AegisClassifier().filter_mask(frame).all()

    scores = pd.DataFrame(
        {"is_poisoned": [False, True, True], "instruction_data_guard_poisoning_score": [0.04, 0.5, 0.97]}
    )
    counts = guard.output_counts(scores)
    assert counts["is_poisoned"] == {"True": 2, "False": 1}
    histogram = counts["instruction_data_guard_poisoning_score"]
    assert list(histogram) == [f"{i / 10:.1f}" for i in range(11)]
    assert (histogram["0.0"], histogram["0.5"], histogram["1.0"], sum(histogram.values())) == (1, 1, 1, 3)
    assert guard.filter_mask(scores).tolist() == [True, True, True]


def test_no_document_no_model():
    aegis = AegisClassifier(base_model="/nonexistent/base", model="/nonexistent/adapter", keep_raw_pred=True)
    assert aegis.columns_for_texts([]) == {"aegis_pred": [], "_aegis_raw_pred": []}
    guard = InstructionDataGuardClassifier(base_model="/nonexistent/base")
    assert [len(v) for v in guard.columns_for_texts([]).values()] == [0, 0]


def test_a_gated_or_missing_base_model_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    from hpc_classify.models.llama_guard import resolve_base_dir

    missing = "no-such-org/LlamaGuard-missing"
    with pytest.raises(PermissionError) as caught:  # as NeMo raises for LlamaGuard it cannot load
        resolve_base_dir(missing)
    assert isinstance(caught.value, ModelNotAvailableError)
    message = str(caught.value)
    assert missing in message and "offline" in message
    for needed in (
        "accept its license",
        f"https://huggingface.co/{missing}",
        "`hf auth login`",
        "HF_TOKEN",
    ):
        assert needed in message
    assert "login node" in message and str(tmp_path / "hf-home") in message
    with pytest.raises(PermissionError, match="LlamaGuard-missing"):
        AegisClassifier(base_model=missing, device="cpu").columns_for_texts(["hello"])
    with pytest.raises(OSError, match="does not exist") as caught:  # a local path: not about access
        resolve_base_dir(str(tmp_path / "not-here"))
    assert isinstance(caught.value, ModelNotAvailableError) and not isinstance(caught.value, PermissionError)


def test_importing_the_classifiers_loads_no_torch():
    code = "import sys, hpc_classify.classifiers.aegis; assert 'torch' not in sys.modules; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.stdout.strip() == "ok", done.stderr


def test_batches_are_planned_longest_first_within_the_limits():
    from hpc_classify.engine.batching import plan_batches

    lengths = [10, 50, 30, 40, 20]
    planned = plan_batches(lengths, max_documents=2, token_budget=200, extra_tokens=10)
    batches = [batch.tolist() for batch in planned]
    assert batches == [[1, 3], [2, 4], [0]]
    assert [b.tolist() for b in plan_batches([500, 10], max_documents=4, token_budget=100)] == [[0], [1]]
    assert sorted(np.concatenate(batches).tolist()) == list(range(5))


def test_batch_size_none_is_nemos_default_for_the_llama_guard_classifiers():
    """batch_size=None was accepted, then a raw TypeError at the first batch on CPU."""
    import torch

    for cls in (AegisClassifier, InstructionDataGuardClassifier):
        classifier = cls(batch_size=None, device_type="cpu")
        assert classifier.batch_size == 64 == dict(_nemo_part(cls, 12))["batch_size"]
        documents, _tokens = classifier._batch_limits(torch.device("cpu"))
        assert documents == min(64, CPU_MAX_DOCUMENTS)
    assert AegisClassifier(batch_size=8, device_type="cpu")._batch_limits(torch.device("cpu"))[0] == min(
        8, CPU_MAX_DOCUMENTS
    )


@pytest.mark.parametrize("max_chars", [-1, 0, 6000, None, "6000"])
def test_the_guard_takes_any_max_chars_as_nemo_does_and_never_applies_it(max_chars):
    """NeMo's guard stores max_chars and never reads it, so a NeMo script may pass -1 or 0: accepted, read
    back as given (NeMo's attribute), not part of what the engine cuts."""
    guard = InstructionDataGuardClassifier(max_chars=max_chars, device_type="cpu")
    assert guard.max_chars == max_chars
