"""Cost per 1,000 documents of each classifier of the family, on its base-sized architecture with random
weights (prints figures; not a test).

Every checkpoint is written in its public layout (config.json, model.safetensors, tokenizer files) and
loaded through its classifier class, so that the measured path is the production one: DeBERTa-v3-base
with NVIDIA's head (domain, quality, content type), DeBERTa-v3-base with eight heads (prompt
task/complexity), BERT-base with one regression output (the FineWeb-Edu family). All use one realistic
tokenizer (16,000-piece BPE trained on the benchmark corpus: about 5 characters per token) and the
benchmark corpus (lognormal lengths, median 2,000 characters), each cut at its classifier's max_chars.
The LlamaGuard-based classifiers are measured by benchmarks/bench_llama_guard.py.

    .venv/bin/python benchmarks/bench_family.py [--documents 48] [--no-autocast] [--output family.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import save_file

from hpc_classify import (
    ContentTypeClassifier,
    DomainClassifier,
    FineWebEduClassifier,
    PromptTaskComplexityClassifier,
    QualityClassifier,
)
from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
from hpc_classify.bench.hardware import cpu_isa, describe_machine
from hpc_classify.engine.device import compute_dtype
from hpc_classify.models.head import ClassifierModel, backbone_config_from_dict
from hpc_classify.models.multihead import MultiHeadDeberta
from hpc_classify.models.tiny import BASE_SIZED_BACKBONE

PROMPT_HEADS = {
    "task_type": 12,
    "creativity_scope": 3,
    "reasoning": 2,
    "contextual_knowledge": 2,
    "number_of_few_shots": 6,
    "domain_knowledge": 4,
    "no_label_reason": 1,
    "constraint_ct": 2,
}


def save_state(out: Path, module: torch.nn.Module, config: dict[str, Any], tokenizer: Any) -> Path:
    out.mkdir(parents=True)
    (out / "config.json").write_text(json.dumps(config))
    state = {k: v.contiguous() for k, v in module.state_dict().items() if not k.endswith("position_ids")}
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(str(out))
    return out


def nvidia_head_checkpoint(out: Path, labels: int, tokenizer: Any) -> Path:
    net = ClassifierModel(backbone_config_from_dict(BASE_SIZED_BACKBONE), labels)
    names = {str(i): f"label_{i}" for i in range(labels)}
    config = {
        **BASE_SIZED_BACKBONE,
        "fc_dropout": 0.2,
        "id2label": names,
        "label2id": {v: int(k) for k, v in names.items()},
    }
    return save_state(out, net, config, tokenizer)


def prompt_complexity_checkpoint(out: Path, tokenizer: Any) -> Path:
    net = MultiHeadDeberta(backbone_config_from_dict(BASE_SIZED_BACKBONE), list(PROMPT_HEADS.values()))
    targets = [
        "task_type_1",
        "task_type_2",
        "task_type_prob",
        *list(PROMPT_HEADS)[1:],
        "prompt_complexity_score",
    ]
    config = {
        **BASE_SIZED_BACKBONE,
        "targets": targets,
        "target_sizes": PROMPT_HEADS,
        "task_type_map": {str(i): f"task_{i}" for i in range(12)},
        "weights_map": {
            "creativity_scope": [2, 1, 0],
            "reasoning": [0, 1],
            "contextual_knowledge": [0, 1],
            "number_of_few_shots": [0, 1, 2, 3, 4, 5],
            "domain_knowledge": [3, 1, 2, 0],
            "no_label_reason": [0],
            "constraint_ct": [1, 0],
        },
        "divisor_map": {
            "creativity_scope": 2,
            "reasoning": 1,
            "contextual_knowledge": 1,
            "number_of_few_shots": 1,
            "domain_knowledge": 3,
            "no_label_reason": 1,
            "constraint_ct": 1,
        },
    }
    return save_state(out, net, config, tokenizer)


def bert_regressor_checkpoint(out: Path, tokenizer: Any) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    model = BertForSequenceClassification(BertConfig(num_labels=1, problem_type="regression"))  # BERT-base
    model.save_pretrained(out)
    tokenizer.save_pretrained(str(out))
    return out


def measure(classifier: Any, texts: list[str]) -> dict[str, Any]:
    frame = pd.DataFrame({"text": texts})
    classifier.predict_frame(frame.head(2))  # loads the engine once (not timed), warms the allocator
    engine, _ = classifier.engine()
    tokens = sum(len(ids) for ids in engine.tokenize(texts))
    started = time.perf_counter()
    classifier.predict_frame(frame)
    seconds = time.perf_counter() - started
    return {
        "documents_per_second": round(len(texts) / seconds, 2),
        "tokens_per_second": round(tokens / seconds, 1),
        "mean_tokens": round(tokens / len(texts), 1),
        "seconds_per_1000_documents": round(1000 * seconds / len(texts), 1),
        "dtype": str(engine.dtype).removeprefix("torch."),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--documents", type=int, default=48)
    parser.add_argument("--no-autocast", action="store_true", help="exact fp32 instead of bf16 where native")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="cpu (default) or cuda")
    parser.add_argument("--output", help="also write the results as JSON here")
    args = parser.parse_args()
    autocast = not args.no_autocast
    texts = synthetic_documents(args.documents, seed=3)
    tokenizer = train_tokenizer(tokenizer_training_text())
    torch.manual_seed(0)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-family-") as tmp:
        work = Path(tmp)
        deberta = nvidia_head_checkpoint(work / "deberta-26", 26, tokenizer)
        cases = {
            "DomainClassifier": lambda: DomainClassifier(
                model=str(deberta), device=args.device, autocast=autocast
            ),
            "QualityClassifier": lambda: QualityClassifier(
                model=str(nvidia_head_checkpoint(work / "deberta-3", 3, tokenizer)),
                device=args.device,
                autocast=autocast,
            ),
            "ContentTypeClassifier": lambda: ContentTypeClassifier(
                model=str(nvidia_head_checkpoint(work / "deberta-11", 11, tokenizer)),
                device=args.device,
                autocast=autocast,
            ),
            "PromptTaskComplexityClassifier": lambda: PromptTaskComplexityClassifier(
                model=str(prompt_complexity_checkpoint(work / "prompt", tokenizer)),
                device=args.device,
                autocast=autocast,
            ),
            "FineWebEduClassifier (and Mixtral/Nemotron)": lambda: FineWebEduClassifier(
                model=str(bert_regressor_checkpoint(work / "bert", tokenizer)),
                device=args.device,
                autocast=autocast,
            ),
        }
        for name, make in cases.items():
            results[name] = measure(make(), texts)
            print(f"{name:<45} {results[name]}", flush=True)
    machine = describe_machine()
    report = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": f"{machine.get('cpu', '?')} ({cpu_isa()})",
        "torch_threads": machine["torch_threads"],
        "device": args.device if args.device == "cpu" else torch.cuda.get_device_name(0),
        "precision": str(compute_dtype(torch.device(args.device), autocast)).removeprefix("torch."),
        "documents": args.documents,
        "results": results,
    }
    print(
        f"CPU: {report['cpu']}, {report['torch_threads']} threads; device {report['device']}, {report['precision']}"
    )
    print(f"{'classifier':<45} {'s / 1,000 docs':>15} {'docs/s':>8} {'tokens/doc':>11}")
    for name, r in results.items():
        print(
            f"{name:<45} {r['seconds_per_1000_documents']:>15.1f} {r['documents_per_second']:>8.2f} {r['mean_tokens']:>11.1f}"
        )
    if args.output:
        Path(args.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
