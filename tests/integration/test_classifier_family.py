"""NeMo Curator's classifier family on tiny checkpoints in the public layouts (tests/family_models.py):
FineWeb-Edu (3 variants, regression), content type (argmax), prompt task/complexity (8 heads). Each is
compared with an independent computation written here (plain transformers/torch + NeMo's post-processing
as its source states it), in fp32 exactly and under autocast within bf16 tolerance; then all of them in
one pass through `hpc-classify run`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from driver_support import make_corpus, output_files, read_jsonl, run_cli
from reference_models import nvidia_checkpoint_probabilities
from safetensors.torch import load_file

from hpc_classify import (
    ContentTypeClassifier,
    DomainClassifier,
    FineWebEduClassifier,
    FineWebMixtralEduClassifier,
    FineWebNemotronEduClassifier,
    MultilingualDomainClassifier,
    PromptTaskComplexityClassifier,
    QualityClassifier,
)
from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus


@pytest.fixture(scope="module")
def texts() -> list[str]:
    found, _ = synthetic_corpus(40, DOMAIN_LABELS, seed=21)
    return [*found, "", "x" * 9000]  # an empty document and one longer than every max_chars


def frame_of(texts: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"id": range(len(texts)), "text": texts})


# -- FineWeb-Edu ------------------------------------------------------------------------------------
def reference_fineweb(model_dir: Path, texts: list[str]) -> np.ndarray:
    """The regression output of each document alone: AutoModelForSequenceClassification, logits.squeeze(-1)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    with torch.no_grad():
        return np.array(
            [
                model(**tokenizer(t, truncation=True, return_tensors="pt")).logits.squeeze(-1).item()
                for t in texts
            ]
        )


def nemo_fineweb_columns(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """fineweb_edu.py: where(s >= 0, 0), where(s <= 5, 5); round() half to even; label >= 2.5 -> high."""
    score = pd.Series(raw.astype(np.float32))
    score = score.where(score >= 0, 0).where(score <= 5, 5)
    label = pd.Series("high_quality", index=score.index).mask(score < 2.5, "low_quality")
    return score.to_numpy(), np.round(score.to_numpy()).astype(int), label.to_numpy()


FINEWEB = [
    (FineWebEduClassifier, "fineweb-edu-score", "fineweb-edu-score-int", None),
    (
        FineWebMixtralEduClassifier,
        "fineweb-mixtral-edu-score",
        "fineweb-mixtral-edu-score-int",
        "fineweb-mixtral-edu-score-label",
    ),
    (
        FineWebNemotronEduClassifier,
        "fineweb-nemotron-edu-score",
        "fineweb-nemotron-edu-score-int",
        "fineweb-nemotron-edu-score-label",
    ),
]


@pytest.mark.parametrize(
    ("cls", "score_col", "int_col", "label_col"), FINEWEB, ids=lambda v: getattr(v, "__name__", "")
)
def test_fineweb_scores_match_the_reference_exactly_in_fp32(
    cls, score_col, int_col, label_col, tiny_fineweb_model, texts
):
    got = cls(model=str(tiny_fineweb_model), autocast=False, device="cpu").predict_frame(frame_of(texts))
    want_score, want_int, want_label = nemo_fineweb_columns(reference_fineweb(tiny_fineweb_model, texts))
    assert np.abs(got[score_col].to_numpy() - want_score).max() <= 1e-5
    away_from_ties = np.abs(want_score - np.floor(want_score) - 0.5) > 1e-4
    assert (got[int_col].to_numpy() == want_int)[away_from_ties].all()
    assert (
        set(want_int) > {0, 5} or len(set(want_int)) >= 3
    )  # the scores spread: clipping and rounding tested
    if label_col:
        assert (got[label_col].to_numpy() == want_label)[np.abs(want_score - 2.5) > 1e-4].all()
        assert set(want_label) == {"high_quality", "low_quality"}
    else:
        assert list(got.columns) == ["id", "text", score_col, int_col]


def test_fineweb_under_autocast_is_within_bf16_tolerance(tiny_fineweb_model, texts):
    exact = FineWebMixtralEduClassifier(model=str(tiny_fineweb_model), autocast=False, device="cpu")
    # bf16 forced: precision auto is fp32 on a CPU without native bf16, which would compare fp32 with itself.
    fast = FineWebMixtralEduClassifier(model=str(tiny_fineweb_model), device="cpu", precision="bf16")
    a, b = exact.predict_frame(frame_of(texts)), fast.predict_frame(frame_of(texts))
    assert np.abs(a["fineweb-mixtral-edu-score"] - b["fineweb-mixtral-edu-score"]).max() <= 0.1
    agreement = (a["fineweb-mixtral-edu-score-label"] == b["fineweb-mixtral-edu-score-label"]).mean()
    assert agreement >= 0.95


def test_fineweb_counts_are_a_histogram_of_the_integer_scores(tiny_fineweb_model, texts):
    classifier = FineWebMixtralEduClassifier(model=str(tiny_fineweb_model), autocast=False, device="cpu")
    predicted = classifier.predict_frame(frame_of(texts))
    counts = classifier.output_counts(predicted)
    ints = predicted["fineweb-mixtral-edu-score-int"].tolist()
    assert counts["fineweb-mixtral-edu-score-int"] == {str(i): ints.count(i) for i in range(6)}
    assert sum(counts["fineweb-mixtral-edu-score-label"].values()) == len(texts)
    assert classifier.get_labels() is None


# -- content type --------------------------------------------------------------------------------------
def test_content_type_matches_the_reference_and_filters(tiny_content_type_model, texts):
    from family_models import CONTENT_TYPE_LABELS

    classifier = ContentTypeClassifier(model=str(tiny_content_type_model), autocast=False, prob_column="p")
    got = classifier.predict_frame(frame_of(texts))
    # NeMo's max_length: the tokenizer's model_max_length (1024 for this tokenizer), text cut at 5000 chars.
    want = nvidia_checkpoint_probabilities(tiny_content_type_model, texts, 5000, 1024)
    assert np.abs(np.array(got["p"].tolist()) - want).max() <= 1e-5
    assert got["content_pred"].tolist() == [CONTENT_TYPE_LABELS[i] for i in want.argmax(1)]
    kept = ContentTypeClassifier(["News", "Blogs"], model=str(tiny_content_type_model)).classify_frame(
        frame_of(texts)
    )
    assert set(kept["content_pred"]) <= {"News", "Blogs"}
    with pytest.raises(ConfigError, match="Recipes"):
        ContentTypeClassifier("Recipes", model=str(tiny_content_type_model)).classify_frame(frame_of(texts))


# -- prompt task / complexity ------------------------------------------------------------------------
def reference_prompt_complexity(model_dir: Path, texts: list[str]) -> list[dict]:
    """CustomHFDeberta + process_logits of NeMo's prompt_task_complexity.py, one document at a time."""
    from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

    config = json.loads((model_dir / "config.json").read_text())
    backbone = DebertaV2Model(
        DebertaV2Config(**json.loads((Path(config["base_model"]) / "config.json").read_text()))
    )
    weights = load_file(str(model_dir / "model.safetensors"))
    backbone.load_state_dict(
        {k[len("backbone.") :]: v for k, v in weights.items() if k.startswith("backbone.")}
    )
    backbone.eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    names = list(config["target_sizes"])
    rows = []
    with torch.no_grad():
        for text in texts:
            encoded = tokenizer(text[:2000], truncation=True, return_tensors="pt")
            hidden = backbone(
                input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]
            ).last_hidden_state
            mask = encoded["attention_mask"].unsqueeze(-1).float()
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            logits = {
                n: pooled @ weights[f"head_{i}.fc.weight"].T + weights[f"head_{i}.fc.bias"]
                for i, n in enumerate(names)
            }
            top2 = torch.topk(logits["task_type"], k=2, dim=1).indices[0]
            probs = torch.softmax(logits["task_type"], dim=1)[0][top2]
            p_rounded = [round(p.item(), 3) for p in probs]
            row = {
                "task_type_1": config["task_type_map"][str(top2[0].item())],
                "task_type_2": config["task_type_map"][str(top2[1].item())] if p_rounded[1] >= 0.1 else "NA",
                "task_type_prob": p_rounded[0],
            }
            for n in names[1:]:
                # As NeMo: float32 probabilities times numpy's weights array, so summed in float64.
                p = torch.softmax(logits[n], dim=1).numpy()
                weighted = np.sum(p * np.array(config["weights_map"][n]), axis=1) / config["divisor_map"][n]
                value = round(weighted[0], 4)  # a np.float64: numpy's rounding, as NeMo's
                row[n] = 0 if n == "number_of_few_shots" and value < 0.05 else value
            row["prompt_complexity_score"] = round(
                0.35 * row["creativity_scope"]
                + 0.25 * row["reasoning"]
                + 0.15 * row["constraint_ct"]
                + 0.15 * row["domain_knowledge"]
                + 0.05 * row["contextual_knowledge"]
                + 0.05 * row["number_of_few_shots"],
                5,
            )
            rows.append(row)
    return rows


def test_prompt_complexity_columns_match_the_reference(tiny_prompt_complexity_model, texts):
    classifier = PromptTaskComplexityClassifier(model=str(tiny_prompt_complexity_model), autocast=False)
    got = classifier.predict_frame(frame_of(texts))
    want = reference_prompt_complexity(tiny_prompt_complexity_model, texts)
    targets = json.loads((tiny_prompt_complexity_model / "config.json").read_text())["targets"]
    assert list(got.columns) == ["id", "text", *targets]
    for column in targets:
        expected = [row[column] for row in want]
        if column in ("task_type_1", "task_type_2"):
            assert got[column].tolist() == expected, column
        else:  # rounded to 3 (task_type_prob) or 4-5 decimals: a 1e-6 float difference may flip the last digit
            last_digit = 1.1e-3 if column == "task_type_prob" else 1.1e-4
            difference = np.abs(got[column].to_numpy(dtype=float) - np.array(expected, dtype=float)).max()
            assert difference <= last_digit, (column, difference)
    assert len(set(got["task_type_1"])) >= 3
    counts = classifier.output_counts(got)
    assert (
        sum(counts["task_type_1"].values()) == sum(counts["prompt_complexity_score"].values()) == len(texts)
    )
    with pytest.raises(NotImplementedError):
        classifier.get_labels()


def test_prompt_complexity_under_autocast_is_within_bf16_tolerance(tiny_prompt_complexity_model, texts):
    exact = PromptTaskComplexityClassifier(model=str(tiny_prompt_complexity_model), autocast=False)
    # bf16 forced: precision auto is fp32 on a CPU without native bf16, which would compare fp32 with itself.
    fast = PromptTaskComplexityClassifier(model=str(tiny_prompt_complexity_model), precision="bf16")
    a, b = exact.predict_frame(frame_of(texts)), fast.predict_frame(frame_of(texts))
    assert np.abs(a["prompt_complexity_score"] - b["prompt_complexity_score"]).max() <= 0.05
    assert (a["task_type_1"] == b["task_type_1"]).mean() >= 0.9


# -- signatures and arguments ----------------------------------------------------------------------
NEMO_SIGNATURES = {
    # NeMo Curator 0.7.1's parameters in order, with defaults (device_type: "auto" here, "cuda" there).
    FineWebEduClassifier: "batch_size=256 text_field='text' pred_column='fineweb-edu-score' "
    "int_column='fineweb-edu-score-int' max_chars=-1 device_type autocast=True max_mem_gb=None",
    FineWebMixtralEduClassifier: "batch_size=1024 text_field='text' pred_column='fineweb-mixtral-edu-score' "
    "int_column='fineweb-mixtral-edu-score-int' quality_label_column='fineweb-mixtral-edu-score-label' "
    "max_chars=-1 device_type autocast=True max_mem_gb=None",
    FineWebNemotronEduClassifier: "batch_size=1024 text_field='text' pred_column='fineweb-nemotron-edu-score' "
    "int_column='fineweb-nemotron-edu-score-int' quality_label_column='fineweb-nemotron-edu-score-label' "
    "max_chars=-1 device_type autocast=True max_mem_gb=None",
    ContentTypeClassifier: "filter_by=None batch_size=256 text_field='text' pred_column='content_pred' "
    "prob_column=None max_chars=5000 device_type autocast=True max_mem_gb=None",
    PromptTaskComplexityClassifier: "batch_size=256 text_field='text' max_chars=2000 device_type autocast=True "
    "max_mem_gb=None",
    DomainClassifier: "filter_by=None batch_size=256 text_field='text' pred_column='domain_pred' "
    "prob_column=None max_chars=2000 device_type autocast=True max_mem_gb=None",
    MultilingualDomainClassifier: "filter_by=None batch_size=256 text_field='text' pred_column='domain_pred' "
    "prob_column=None max_chars=2000 device_type autocast=True max_mem_gb=None",
    QualityClassifier: "filter_by=None batch_size=256 text_field='text' pred_column='quality_pred' "
    "prob_column='quality_prob' max_chars=6000 device_type autocast=True max_mem_gb=None",
}


@pytest.mark.parametrize("cls", list(NEMO_SIGNATURES), ids=lambda c: c.__name__)
def test_constructor_arguments_are_nemos_in_order_then_model_and_revision(cls):
    parameters = list(inspect.signature(cls).parameters.values())
    positional = [p for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD]
    described = " ".join(p.name if p.name == "device_type" else f"{p.name}={p.default!r}" for p in positional)
    assert described == NEMO_SIGNATURES[cls]
    keywords = {p.name for p in parameters if p.kind is p.KEYWORD_ONLY}
    assert {"model", "revision"} <= keywords


def test_arguments_take_effect_or_are_refused(tiny_fineweb_model, texts):
    with pytest.raises(TypeError, match="filter_by"):
        FineWebEduClassifier(filter_by=["high_quality"])  # NeMo has no filter on a score either
    with pytest.raises(ConfigError, match="max_mem_gb limits GPU memory"):
        FineWebEduClassifier(device_type="cpu", max_mem_gb=8)
    prefix, longer = texts[0][:20], texts[0][:20] + " " + texts[1]
    cut = FineWebEduClassifier(model=str(tiny_fineweb_model), max_chars=20, autocast=False, device="cpu")
    whole = FineWebEduClassifier(model=str(tiny_fineweb_model), autocast=False, device="cpu")
    cut_scores = cut.predict_frame(frame_of([prefix, longer]))["fineweb-edu-score"].to_numpy()
    whole_scores = whole.predict_frame(frame_of([prefix, longer]))["fineweb-edu-score"].to_numpy()
    # Rows of one batch are not bitwise identical: equal within fp32 noise once cut, different uncut.
    assert abs(cut_scores[0] - cut_scores[1]) <= 1e-5  # max_chars is honoured
    assert abs(whole_scores[0] - whole_scores[1]) > 1e-3


def test_a_row_without_text_names_its_source(tiny_fineweb_model):
    frame = pd.DataFrame({"text": ["fine", None]})
    with pytest.raises(InputFileError, match="shard.jsonl: 1 row.*missing or not a string"):
        FineWebEduClassifier(model=str(tiny_fineweb_model)).predict_frame(frame, source="shard.jsonl")


def test_a_row_without_text_is_named_by_its_row_in_the_file(tmp_path, tiny_fineweb_model):
    from hpc_classify import DocumentDataset

    for name, null_at in (("a.jsonl", 30), ("b.jsonl", 3), ("c.jsonl", None)):
        rows = [{"text": None if i == null_at else f"football match goal team {i}"} for i in range(40)]
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    classifier = FineWebEduClassifier(model=str(tiny_fineweb_model), device_type="cpu")

    def error_of(**read) -> str:
        dataset = DocumentDataset.read_json(str(tmp_path / "a.jsonl"), add_filename=True, **read)
        with pytest.raises(InputFileError) as raised:
            classifier(dataset).df.compute()
        return str(raised.value)

    # a.jsonl cut into pieces of ~300 bytes: row 31 of the file (the piece's row 6 was named).
    assert "a.jsonl: 1 row(s) whose 'text' is missing or not a string, first at row 31\n" in error_of(
        blocksize=300
    )
    assert "first at row 31\n" in error_of()  # one partition per file
    both = DocumentDataset.read_json(
        [str(tmp_path / "c.jsonl"), str(tmp_path / "b.jsonl")], add_filename=True, files_per_partition=2
    )  # two files in one partition: the row is still the file's
    with pytest.raises(InputFileError, match=r"b\.jsonl: .*first at row 4\n"):
        classifier(both).df.compute()

    # Written to Parquet and read back two files a partition: no note of the first read travels in the
    # files' metadata; the row named is the written file's.
    DocumentDataset.read_json(
        [str(tmp_path / "c.jsonl"), str(tmp_path / "b.jsonl")], files_per_partition=1
    ).to_parquet(str(tmp_path / "pq"))
    assert not any(
        b"file_rows" in (pq.read_schema(path).metadata or {}).get(b"pandas", b"")
        for path in (tmp_path / "pq").glob("*.parquet")
    )
    again = DocumentDataset.read_parquet(str(tmp_path / "pq"), files_per_partition=2)
    with pytest.raises(InputFileError, match=r"part\.1\.parquet: .*first at row 4\n"):
        classifier(again).df.compute()


# -- the family in one pass through the CLI ----------------------------------------------------------
def test_family_in_one_pass_through_hpc_classify_run(
    tmp_path, tiny_fineweb_model, tiny_content_type_model, tiny_prompt_complexity_model
):
    expected = make_corpus(tmp_path / "in", 3, 8, bad_lines={1: ['{"id": "x", "text": null}']})
    out = tmp_path / "out"
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {tmp_path / 'in'}\noutput: {out}\nworkers: 1\nthreads_per_worker: 1\ndevice: cpu\n"
        "on_bad_row: skip\nkeep_columns: [id]\nautocast: false\n"
        "classifiers:\n"
        f"  - classifier: fineweb-nemotron-edu\n    model: {tiny_fineweb_model}\n"
        f"  - classifier: fineweb-edu\n    model: {tiny_fineweb_model}\n"
        f"  - classifier: fineweb-mixtral-edu\n    model: {tiny_fineweb_model}\n"
        f"  - classifier: content-type\n    model: {tiny_content_type_model}\n"
        f"  - classifier: prompt-task-complexity\n    model: {tiny_prompt_complexity_model}\n"
    )
    proc = run_cli(["run", "--config", str(config)])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {name: read_jsonl(path) for name, path in output_files(out).items()}
    assert {name: [r["id"] for r in found] for name, found in rows.items()} == expected
    texts = {
        r["id"]: r["text"]
        for p in sorted((tmp_path / "in").glob("*.jsonl"))
        for r in map(json.loads, p.read_text().splitlines())
        if r["text"]
    }
    some = rows["part-000.jsonl"]
    want_score, _, _ = nemo_fineweb_columns(
        reference_fineweb(tiny_fineweb_model, [texts[r["id"]] for r in some])
    )
    for variant in ("fineweb-nemotron-edu", "fineweb-edu", "fineweb-mixtral-edu"):  # one model, three columns
        assert np.abs(np.array([r[f"{variant}-score"] for r in some]) - want_score).max() <= 1e-5
    assert all(
        {"content_pred", "task_type_1", "prompt_complexity_score", "row_number"} <= set(r) for r in some
    )
    assert not any("text" in r for found in rows.values() for r in found)
    summary = json.loads((out / "_summary.json").read_text())
    assert set(summary["labels"]) == {
        "fineweb-nemotron-edu-score-int",
        "fineweb-nemotron-edu-score-label",
        "fineweb-edu-score-int",
        "fineweb-mixtral-edu-score-int",
        "fineweb-mixtral-edu-score-label",
        "content_pred",
        "task_type_1",
        "prompt_complexity_score",
    }
    total = sum(map(len, expected.values()))
    assert (
        sum(summary["labels"]["fineweb-nemotron-edu-score-int"].values()) == summary["documents_in"] == total
    )
    assert summary["rows_bad"] == 1
    status = run_cli(["status", "--output", str(out)])
    assert "fineweb-nemotron-edu-score-int:" in status.stdout and "task_type_1:" in status.stdout
