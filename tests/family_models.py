"""Tiny test checkpoints of NeMo Curator's classifier family, each in its public checkpoint's exact layout.

- `build_fineweb_regressor(out, seed)`: HuggingFaceFW/fineweb-edu-classifier's layout (a BERT
  `BertForSequenceClassification` with one regression output, `save_pretrained` files, a WordPiece
  tokenizer with vocab.txt), trained a few dozen steps so that scores spread over 0..5 by topic.
- `build_prompt_complexity(out, tokenizer_dir)`: nvidia/prompt-task-and-complexity-classifier's layout
  (config.json with targets/target_sizes/task_type_map/weights_map/divisor_map and `base_model`;
  model.safetensors with `backbone.*` and `head_<i>.fc.*`), random weights, the given tokenizer files.
The content-type checkpoint is `hpc_classify.models.tiny.build_tiny_checkpoint` with `CONTENT_TYPE_LABELS`
(the same layout as the domain classifier's).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

CONTENT_TYPE_LABELS = [
    "Product/Company/Organization/Personal Websites",
    "Explanatory Articles",
    "News",
    "Blogs",
    "MISC",
    "Boilerplate Content",
    "Analytical Exposition",
    "Online Comments",
    "Reviews",
    "Books and Literature",
    "Conversational",
]

# The public checkpoint's config, heads and maps (nvidia/prompt-task-and-complexity-classifier).
PROMPT_TARGETS = [
    "task_type_1",
    "task_type_2",
    "task_type_prob",
    "creativity_scope",
    "reasoning",
    "contextual_knowledge",
    "number_of_few_shots",
    "domain_knowledge",
    "no_label_reason",
    "constraint_ct",
    "prompt_complexity_score",
]
TARGET_SIZES = {
    "task_type": 12,
    "creativity_scope": 3,
    "reasoning": 2,
    "contextual_knowledge": 2,
    "number_of_few_shots": 6,
    "domain_knowledge": 4,
    "no_label_reason": 1,
    "constraint_ct": 2,
}
TASK_TYPE_MAP = {
    str(i): name
    for i, name in enumerate(
        [
            "Brainstorming",
            "Chatbot",
            "Classification",
            "Closed QA",
            "Code Generation",
            "Extraction",
            "Open QA",
            "Other",
            "Rewrite",
            "Summarization",
            "Text Generation",
            "Unknown",
        ]
    )
}
WEIGHTS_MAP = {
    "creativity_scope": [2, 1, 0],
    "reasoning": [0, 1],
    "contextual_knowledge": [0, 1],
    "number_of_few_shots": [0, 1, 2, 3, 4, 5],
    "domain_knowledge": [3, 1, 2, 0],
    "no_label_reason": [0],
    "constraint_ct": [1, 0],
}
DIVISOR_MAP = {
    "creativity_scope": 2,
    "reasoning": 1,
    "contextual_knowledge": 1,
    "number_of_few_shots": 1,
    "domain_knowledge": 3,
    "no_label_reason": 1,
    "constraint_ct": 1,
}


def _wordpiece_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=800, special_tokens=specials))
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return BertTokenizerFast(tokenizer_object=backend, model_max_length=512)


def build_fineweb_regressor(out: Path, seed: int = 0) -> Path:
    from transformers import BertConfig, BertForSequenceClassification

    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    texts, topics = synthetic_corpus(300, DOMAIN_LABELS, seed=seed + 11)
    tokenizer = _wordpiece_tokenizer(texts)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
        num_labels=1,
        problem_type="regression",
        hidden_dropout_prob=0.0,
        classifier_dropout=0.0,
        id2label={0: "LABEL_0"},
        label2id={"LABEL_0": 0},
    )
    model = BertForSequenceClassification(config)
    # Targets over -1..6, so that clipping to [0, 5] and the 2.5 threshold are all exercised.
    targets = torch.tensor([float(topic % 8) - 1.0 for topic in topics])
    encoded = tokenizer(texts, truncation=True, max_length=64, padding="max_length", return_tensors="pt")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(60):
        idx = torch.randint(len(texts), (32,), generator=generator)
        output = model(
            input_ids=encoded["input_ids"][idx],
            attention_mask=encoded["attention_mask"][idx],
            labels=targets[idx],
        )
        optimizer.zero_grad()
        output.loss.backward()
        optimizer.step()
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_prompt_complexity(out: Path, tokenizer_dir: Path, seed: int = 0) -> Path:
    from safetensors.torch import save_file
    from transformers import DebertaV2Config, DebertaV2Model

    from hpc_classify.models.tiny import tiny_backbone_config

    out.mkdir(parents=True)
    for path in tokenizer_dir.iterdir():
        if "token" in path.name or path.suffix == ".model":
            shutil.copy(path, out / path.name)
    vocab = json.loads((tokenizer_dir / "tokenizer.json").read_text())["model"]["vocab"]
    backbone = tiny_backbone_config(len(vocab), hidden=32)
    base_dir = out.parent / f"{out.name}-base"
    base_dir.mkdir()
    (base_dir / "config.json").write_text(json.dumps(backbone))
    torch.manual_seed(seed)
    state = {f"backbone.{k}": v for k, v in DebertaV2Model(DebertaV2Config(**backbone)).state_dict().items()}
    for index, size in enumerate(TARGET_SIZES.values()):
        head = torch.nn.Linear(32, size)
        torch.nn.init.normal_(head.weight, std=2.0)  # large logits: confident and varied predictions
        state[f"head_{index}.fc.weight"], state[f"head_{index}.fc.bias"] = (
            head.weight.detach(),
            head.bias.detach(),
        )
    state = {k: v.contiguous() for k, v in state.items() if not k.endswith("position_ids")}
    config = {
        "base_model": str(base_dir),
        "config_path": None,
        "fc_dropout": 0.2,
        "targets": PROMPT_TARGETS,
        "target_sizes": TARGET_SIZES,
        "task_type_map": TASK_TYPE_MAP,
        "weights_map": WEIGHTS_MAP,
        "divisor_map": DIVISOR_MAP,
        "model_output_type": {
            t: "string" if t in ("task_type_1", "task_type_2") else "numeric" for t in PROMPT_TARGETS
        },
    }
    (out / "config.json").write_text(json.dumps(config))
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    return out
