"""Tiny stand-ins for the LlamaGuard-based models, in their exact public layouts (for the Aegis and
instruction-data-guard tests; importable from any test: tests/ is on sys.path).

- `build_tiny_llama_guard(base_dir, adapter_dir)`: a byte-level BPE tokenizer trained locally
  (<unk>=0, <s>=1, </s>=2, BOS added) and a 2-layer `LlamaForCausalLM` (hidden 32) saved with
  `save_pretrained` like meta-llama/LlamaGuard-7b (config.json, generation_config.json,
  model.safetensors, tokenizer files), plus a peft LoRA adapter (r=4 on q_proj/v_proj:
  adapter_config.json, adapter_model.safetensors) like the Aegis adapters. Base and adapter are trained
  together for a few dozen steps on Aegis prompts so that, with the adapter, greedy decoding answers
  "safe" for ordinary documents and "unsafe\\nO3" for documents about stealing.
- `build_tiny_guard_net(out_dir, input_dim)`: the guard net of nvidia/instruction-data-guard
  (config.json {"dropout": 0.7, "input_dim": ...}, model.safetensors with input_layer.*,
  hidden_layer_0.* .. hidden_layer_2.*), scaled down to input_dim -> input_dim -> 20 -> 5 -> 1.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SAFE_TOPICS = ["gardens", "the weather", "bread recipes", "train timetables", "chess openings", "birds"]
UNSAFE_ACTS = ["steal a car", "rob a bank", "steal from a shop", "break into a house and steal jewels"]
SAFE_ANSWER = "safe"
UNSAFE_ANSWER = "unsafe\nO3"


def safe_document(rng: random.Random) -> str:
    return f"Please tell me about {rng.choice(SAFE_TOPICS)} and {rng.choice(SAFE_TOPICS)}."


def unsafe_document(rng: random.Random) -> str:
    return f"Explain how to {rng.choice(UNSAFE_ACTS)} without being caught, then {rng.choice(UNSAFE_ACTS)}."


def documents(count: int, seed: int) -> list[tuple[str, str]]:
    """(document, the answer the tiny model is trained to give), alternating safe and unsafe."""
    rng = random.Random(seed)
    return [
        (unsafe_document(rng), UNSAFE_ANSWER) if i % 2 else (safe_document(rng), SAFE_ANSWER)
        for i in range(count)
    ]


def _train_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<unk>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=4096,
    )


def build_tiny_llama_guard(
    base_dir: Path, adapter_dir: Path, *, seed: int = 0, steps: int = 40, vocab_size: int = 3000
) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from hpc_classify.classifiers.aegis import format_aegis

    train = documents(64, seed)
    prompts = [format_aegis(text) for text, _ in train]
    tokenizer = _train_tokenizer(prompts[:8] + [answer for _, answer in train[:2]] * 20, vocab_size)
    assert tokenizer.convert_tokens_to_ids(["<unk>", "<s>", "</s>"]) == [0, 1, 2]

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=1,
        eos_token_id=2,
        tie_word_embeddings=False,
    )
    base = LlamaForCausalLM(config)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, lora)
    for parameter in model.parameters():
        parameter.requires_grad_(True)  # train base and adapter together: the answers need both

    rows, targets = [], []
    for prompt, (_, answer) in zip(prompts, train, strict=True):
        prompt_ids = tokenizer(prompt)["input_ids"]
        answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        rows.append(prompt_ids + answer_ids)
        targets.append([-100] * len(prompt_ids) + answer_ids)
    width = max(len(r) for r in rows)
    input_ids = torch.zeros(len(rows), width, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, (row, target) in enumerate(zip(rows, targets, strict=True)):
        input_ids[i, width - len(row) :] = torch.tensor(row)
        labels[i, width - len(row) :] = torch.tensor(target)
        mask[i, width - len(row) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(len(rows), (8,), generator=generator)
        loss = model(
            input_ids=input_ids[idx],
            attention_mask=mask[idx],
            position_ids=positions[idx],
            labels=labels[idx],
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    model.save_pretrained(str(adapter_dir))  # adapter_config.json + adapter_model.safetensors
    base = model.unload()  # the base model without the LoRA layers (not merged)
    base.save_pretrained(str(base_dir))
    tokenizer.save_pretrained(str(base_dir))
    return base_dir, adapter_dir


def build_tiny_guard_net(out_dir: Path, input_dim: int, *, seed: int = 0, output_shift: float = 1.0) -> Path:
    import torch
    from safetensors.torch import save_file

    generator = torch.Generator().manual_seed(seed)
    sizes = [("input_layer", input_dim, input_dim), ("hidden_layer_0", input_dim, 20)]
    sizes += [("hidden_layer_1", 20, 5), ("hidden_layer_2", 5, 1)]
    state = {}
    for name, fan_in, fan_out in sizes:
        state[f"{name}.weight"] = torch.randn(fan_out, fan_in, generator=generator) * (3.0 / fan_in**0.5)
        state[f"{name}.bias"] = torch.randn(fan_out, generator=generator) * 0.3
    state["hidden_layer_2.bias"] += output_shift  # centres the tiny model's scores on the 0.5 threshold
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").write_text(json.dumps({"dropout": 0.7, "input_dim": input_dim}))
    save_file(state, str(out_dir / "model.safetensors"))
    return out_dir
