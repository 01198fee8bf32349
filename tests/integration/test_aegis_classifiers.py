"""AegisClassifier and InstructionDataGuardClassifier end to end on tiny LlamaGuard stand-ins (tests/aegis_models.py):
through `hpc_classify.run` on an in-process Dask cluster, both in one pass, and through `hpc-classify run
--config`, each compared exactly with an independent computation in plain transformers/peft/torch."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from aegis_models import documents
from driver_support import output_files, read_jsonl, run_cli

from hpc_classify import run
from hpc_classify.classifiers.aegis import (
    AEGIS_LABELS,
    UNSAFE_CATEGORIES,
    AegisClassifier,
    InstructionDataGuardClassifier,
)
from hpc_classify.engine.precision import cpu_has_native_bf16

# The spec: NeMo Curator 0.7.1's format_aegis (its f-strings' 4-space indents included); the categories
# text is checked against NeMo's by hash in tests/unit/test_aegis_parsing.py.
TEMPLATE = (
    "[INST] Task: Check if there is unsafe content in 'User' messages in conversations according our safety "
    "policy with the below categories.\n\n    <BEGIN UNSAFE CONTENT CATEGORIES>\n    {categories}\n"
    "    <END UNSAFE CONTENT CATEGORIES>\n\n    <BEGIN CONVERSATION>\n\n    User: {message}\n\n"
    "<END CONVERSATION>\n\n    Provide your safety assessment for User in the above conversation:\n"
    "    - First line must read 'safe' or 'unsafe'.\n"
    "    - If unsafe, a second line must include a comma-separated list of violated categories. [/INST]"
)
AEGIS_CLASS = "hpc_classify.classifiers.aegis:AegisClassifier"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Two JSONL files: trained-on kinds of documents, an empty one, an unseen one, a long one."""
    root = tmp_path / "in"
    root.mkdir()
    texts = [text for text, _ in documents(4, seed=11)]
    shards = {
        "a.jsonl": [texts[0], texts[1], "", texts[2] * 3],
        "b.jsonl": [texts[3], "Zq\u00e9 x\n\n42 \u2603 ###"],
    }
    for name, rows in shards.items():
        lines = [json.dumps({"id": f"{name[0]}{i}", "text": text}) for i, text in enumerate(rows)]
        (root / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# -- independent reference computations ----------------------------------------------------------------
def _reference_model(base: Path, adapter: Path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base, padding_side="left")
    tokenizer.pad_token = tokenizer.unk_token
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapter
    )
    return model.eval(), tokenizer


def reference_parse(response: str) -> str:
    lines = response.split("\n")
    if lines[0].strip() == "safe":
        return "safe"
    if (
        lines[0].strip() == "unsafe"
        and len(lines) > 1
        and lines[1].strip() in [f"O{i}" for i in range(1, 14)]
    ):
        return lines[1].strip()
    return "unknown"


def reference_aegis(base: Path, adapter: Path, texts: list[str], max_chars: int = 6000) -> list[str]:
    """Raw answers: prompt, left-padded batch, greedy generate, decode, strip the prompt by characters."""
    model, tokenizer = _reference_model(base, adapter)
    prompts = [TEMPLATE.format(categories=UNSAFE_CATEGORIES, message=text[:max_chars]) for text in texts]
    batch = tokenizer(prompts, padding=True, truncation=True, max_length=4096, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=100, pad_token_id=0, do_sample=False)
    decoded = tokenizer.batch_decode(out, skip_special_tokens=True)
    return [text[len(prompt) :] for text, prompt in zip(decoded, prompts, strict=True)]


def reference_guard(base: Path, adapter: Path, guard: Path, texts: list[str]) -> np.ndarray:
    """NeMo's forward: generate(max_new_tokens=1, hidden states), last layer at the last position, guard net."""
    from safetensors.torch import load_file

    model, tokenizer = _reference_model(base, adapter)
    batch = tokenizer(
        [t or "unknown" for t in texts], padding=True, truncation=True, max_length=4096, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.generate(
            **batch, max_new_tokens=1, pad_token_id=0, output_hidden_states=True, return_dict_in_generate=True
        )
    x = F.normalize(out.hidden_states[0][-1][:, -1, :].float(), dim=-1)
    weights = load_file(str(guard / "model.safetensors"))
    for name in ("input_layer", "hidden_layer_0", "hidden_layer_1"):
        x = F.relu(F.linear(x, weights[f"{name}.weight"], weights[f"{name}.bias"]))
    x = F.linear(x, weights["hidden_layer_2.weight"], weights["hidden_layer_2.bias"])
    return torch.sigmoid(x).flatten().numpy()


def corpus_texts(root: Path) -> dict[str, list[dict]]:
    return {p.name: read_jsonl(p) for p in sorted(root.glob("*.jsonl"))}


def _aegis(models: tuple[Path, Path], **kwargs) -> AegisClassifier:
    base, adapter = models
    return AegisClassifier(
        base_model=str(base), model=str(adapter), device_type="cpu", autocast=False, **kwargs
    )


def _client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None)
    return cluster, Client(cluster)


# -- the tests --------------------------------------------------------------------------------------------
def test_aegis_through_the_python_driver_matches_the_reference(tmp_path, corpus, tiny_llama_guard):
    cluster, client = _client()
    with cluster, client:
        result = run([_aegis(tiny_llama_guard, keep_raw_pred=True)], corpus, tmp_path / "out", cluster=client)
    assert result.exit_code == 0 and result.summary["files_processed"] == 2
    written = {name: read_jsonl(path) for name, path in output_files(tmp_path / "out").items()}
    seen = []
    for name, source in corpus_texts(corpus).items():
        rows = written[name]
        assert [r["id"] for r in rows] == [r["id"] for r in source]  # every row once, in order
        assert all(set(r) == {"id", "text", "aegis_pred", "_aegis_raw_pred"} for r in rows)
        want_raw = reference_aegis(*tiny_llama_guard, [r["text"] for r in source])
        assert [r["_aegis_raw_pred"] for r in rows] == want_raw
        assert [r["aegis_pred"] for r in rows] == [reference_parse(w) for w in want_raw]
        seen += [r["aegis_pred"] for r in rows]
    assert {"safe", "O3"} <= set(seen) and set(seen) <= set(AEGIS_LABELS)
    counts = result.summary["labels"]["aegis_pred"]
    assert sum(counts.values()) == 6 and counts["safe"] == seen.count("safe")


def test_both_classifiers_in_one_pass(tmp_path, corpus, tiny_llama_guard, tiny_guard_net):
    base, adapter = tiny_llama_guard
    guard = InstructionDataGuardClassifier(
        autocast=False,
        device_type="cpu",
        model=str(tiny_guard_net),
        base_model=str(base),
        aegis_adapter=str(adapter),
    )
    aegis = _aegis(tiny_llama_guard, filter_by=["safe"])
    cluster, client = _client()
    with cluster, client:
        result = run([aegis, guard], corpus, tmp_path / "out", cluster=client)
    assert result.exit_code == 0
    written = {name: read_jsonl(path) for name, path in output_files(tmp_path / "out").items()}
    poisoned, scores = [], []
    for name, source in corpus_texts(corpus).items():
        texts = [r["text"] for r in source]
        want_pred = [reference_parse(r) for r in reference_aegis(base, adapter, texts)]
        want_score = reference_guard(base, adapter, tiny_guard_net, texts)
        kept = [i for i, label in enumerate(want_pred) if label == "safe"]
        assert (name in written) == bool(kept)  # a file with no row kept gets no output file
        rows = written.get(name, [])
        assert [r["id"] for r in rows] == [source[i]["id"] for i in kept]  # filter_by: only "safe" rows
        assert all(set(r) == {"id", "text", "aegis_pred", "is_poisoned", guard.prob_column} for r in rows)
        got = np.array([r[guard.prob_column] for r in rows], dtype=np.float64)
        np.testing.assert_allclose(got, want_score[kept], rtol=0, atol=1e-5)
        assert [r["is_poisoned"] for r in rows] == [bool(s >= 0.5) for s in want_score[kept]]
        poisoned += [bool(s >= 0.5) for s in want_score]
        scores += want_score.tolist()
    assert True in poisoned and False in poisoned  # the tiny guard net straddles the threshold
    labels = result.summary["labels"]
    assert set(labels) == {"aegis_pred", "is_poisoned", guard.prob_column}
    assert sum(labels["is_poisoned"].values()) == 6 and labels["is_poisoned"]["True"] == sum(poisoned)
    histogram = {key: n for key, n in labels[guard.prob_column].items() if n}  # before filtering: all rows
    assert histogram == {
        f"{v:.1f}": n for v, n in zip(*np.unique(np.round(scores, 1), return_counts=True), strict=True)
    }


def test_aegis_through_the_cli_config(tmp_path, corpus, tiny_llama_guard, tiny_guard_net):
    base, adapter = tiny_llama_guard
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {corpus}\noutput: {tmp_path / 'out'}\nworkers: 1\nthreads_per_worker: 1\ndevice: cpu\n"
        f"classifiers:\n  - classifier: {AEGIS_CLASS}\n    base_model: {base}\n    model: {adapter}\n"
        "    autocast: false\n    batch_size: 2\n    filter_by: [safe, O3]\n"
        f"  - classifier: instruction-data-guard\n    base_model: {base}\n    aegis_adapter: {adapter}\n"
        f"    model: {tiny_guard_net}\n    autocast: false\n"
    )
    proc = run_cli(["run", "--config", str(config)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for name, source in corpus_texts(corpus).items():
        want = [reference_parse(r) for r in reference_aegis(base, adapter, [r["text"] for r in source])]
        rows = read_jsonl(tmp_path / "out" / name)
        assert [(r["id"], r["aegis_pred"]) for r in rows] == [
            (s["id"], w) for s, w in zip(source, want, strict=True) if w in ("safe", "O3")
        ]
        assert all("_aegis_raw_pred" not in r for r in rows)
        assert all(isinstance(r["is_poisoned"], bool) for r in rows)  # the guard ran in the same pass


def test_frames_fingerprint_and_the_cpu_warning(tiny_llama_guard, tiny_guard_net, monkeypatch, caplog):
    import hpc_classify.models.llama_guard_loading as llama_guard_loading
    from hpc_classify.classifiers import runtime

    base, adapter = tiny_llama_guard
    aegis = _aegis(tiny_llama_guard, token="hf_not_a_real_token")
    texts = [text for text, _ in documents(3, seed=5)]
    frame = aegis.predict_frame(pd.DataFrame({"text": texts}))
    assert frame["aegis_pred"].tolist() == [reference_parse(r) for r in reference_aegis(base, adapter, texts)]
    fingerprint = aegis.fingerprint()
    assert "hf_not_a_real_token" not in json.dumps(fingerprint)
    assert fingerprint["labels"] == AEGIS_LABELS and fingerprint["columns"] == ["aegis_pred"]
    assert (
        len(fingerprint["model"]["adapter_hash"]) == 16 and len(fingerprint["model"]["base_model_hash"]) == 16
    )
    guard = InstructionDataGuardClassifier(
        model=str(tiny_guard_net), base_model=str(base), aegis_adapter=str(adapter), device="cpu"
    )
    assert guard.model_fingerprint()["adapter_hash"] == fingerprint["model"]["adapter_hash"]
    assert len(guard.model_fingerprint()["guard_hash"]) == 16

    monkeypatch.setattr(runtime, "_MODELS", {})  # load afresh, as a "7B" model
    monkeypatch.setattr(llama_guard_loading, "LARGE_MODEL_PARAMETERS", 1000)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.models.llama_guard_loading"):
        aegis.load_model(torch.device("cpu"))
    assert any("very slow" in r.getMessage() and "GPU" in r.getMessage() for r in caplog.records)


def test_autocast_stays_within_bf16_tolerance(tiny_llama_guard, tiny_guard_net):
    """bf16 (forced, so the comparison is real on every CPU) stays within bf16 tolerance of fp32; precision
    auto is bf16 where the CPU has it natively, else fp32 and then exactly the fp32 answers."""
    base, adapter = tiny_llama_guard
    texts = [text for text, _ in documents(8, seed=13)]
    frame = pd.DataFrame({"text": texts})
    exact = _aegis(tiny_llama_guard).predict_frame(frame)["aegis_pred"]

    def aegis(**kwargs) -> pd.Series:
        classifier = AegisClassifier(base_model=str(base), model=str(adapter), device_type="cpu", **kwargs)
        return classifier.predict_frame(frame)["aegis_pred"]

    fast = aegis(precision="bf16")
    assert (exact == fast).mean() >= 0.75  # greedy decoding may part ways on a near-tie
    if not cpu_has_native_bf16():
        assert aegis().tolist() == exact.tolist()  # auto: fp32 here

    def guard(**kwargs) -> pd.DataFrame:
        classifier = InstructionDataGuardClassifier(
            device_type="cpu",
            model=str(tiny_guard_net),
            base_model=str(base),
            aegis_adapter=str(adapter),
            **kwargs,
        )
        return classifier.predict_frame(frame)

    a, b = guard(autocast=False), guard(precision="bf16")
    column = "instruction_data_guard_poisoning_score"
    assert np.abs(a[column] - b[column]).max() <= 0.05
    assert (a["is_poisoned"] == b["is_poisoned"]).mean() >= 0.75
    if not cpu_has_native_bf16():
        auto = guard()
        assert auto[column].tolist() == a[column].tolist()  # auto: fp32 here, the same computation
        assert auto["is_poisoned"].tolist() == a["is_poisoned"].tolist()


def test_an_adapter_missing_a_weight_fails_every_file_naming_the_key(tmp_path, corpus, tiny_llama_guard):
    """peft alone left that LoRA B at zero: documents scored by a partly bare LlamaGuard, exit 0. Now the
    worker's load is refused before any document is scored: every file failed with the key, exit 1."""
    import shutil

    from safetensors.torch import load_file, save_file

    base, good = tiny_llama_guard
    adapter = tmp_path / "adapter"
    shutil.copytree(good, adapter)
    weights = adapter / "adapter_model.safetensors"
    key = "base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"
    state = load_file(str(weights))
    save_file({k: v for k, v in state.items() if k != key}, str(weights))
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {corpus}\noutput: {tmp_path / 'out'}\nworkers: 1\nthreads_per_worker: 1\ndevice: cpu\n"
        f"classifiers:\n  - classifier: {AEGIS_CLASS}\n    base_model: {base}\n    model: {adapter}\n"
        "    autocast: false\n"
    )
    proc = run_cli(["run", "--config", str(config)])
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert output_files(tmp_path / "out") == {}
    failures = [json.loads(line) for line in (tmp_path / "out" / "_failures.ndjson").read_text().splitlines()]
    assert sorted(f["relpath"] for f in failures) == ["a.jsonl", "b.jsonl"]
    want = f"{weights}: weights do not match the classifier built from its config: 1 missing key(s) ['{key}']"
    assert all(f["error"].startswith(want) for f in failures), failures
    assert all(f["error_type"] == "CheckpointFormatError" for f in failures), failures
