"""Cost per 1,000 documents of the LlamaGuard-7b classifiers (Aegis, instruction data guard) on this machine.

The real model (13.5 GB in bf16, gated) is not needed: this builds LlamaGuard-7b's architecture (Llama-2-7B:
hidden 4096, 32 heads, intermediate 11008, vocab 32000) with only `--layers K` decoder layers and random
weights created directly in the compute dtype (never a 7B fp32 copy), adds a LoRA adapter on q_proj/v_proj
like the Aegis adapters, and times on random token ids of a realistic length:

- Aegis: prefill of the ~1,000-token prompt, then greedy decoding of `--new-tokens` (NeMo's 100) tokens;
  also reported with the answer length fixed at `--short-answer` tokens ("safe" + </s> stops early).
- Instruction data guard: prefill only (the last hidden state; no LM head).

Times are extrapolated linearly in the number of layers to the real 32 (the LM head, timed on its own, is
counted once). Example: `python benchmarks/bench_llama_guard.py --layers 2 --documents 1`.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

LLAMA_GUARD_ARCH = dict(
    hidden_size=4096,
    intermediate_size=11008,
    num_attention_heads=32,
    num_key_value_heads=32,
    vocab_size=32000,
    max_position_embeddings=4096,
    rms_norm_eps=1e-6,
)
REAL_LAYERS = 32


def cpu_description() -> tuple[str, str]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("unknown", ""):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("avx512_bf16", "AVX-512 BF16"),
                                   ("amx_bf16", "AMX-BF16")) if flag in flags]  # fmt: skip
    return model, ", ".join(isa) or "none of AVX2/AVX-512/AMX"


def build_model(layers: int, dtype, lora_rank: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(num_hidden_layers=layers, bos_token_id=1, eos_token_id=2, **LLAMA_GUARD_ARCH)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # weights are created in the compute dtype directly
    try:
        torch.manual_seed(0)
        model = LlamaForCausalLM(config).eval()
    finally:
        torch.set_default_dtype(previous)
    lora = LoraConfig(r=lora_rank, lora_alpha=2 * lora_rank, target_modules=["q_proj", "v_proj"])
    return get_peft_model(model, lora).to(dtype).eval()


def timed(fn, repeat: int = 1) -> float:
    import torch

    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()  # GPU work is asynchronous: time it to its end
    return (time.perf_counter() - start) / repeat


def main(argv: list[str] | None = None) -> None:
    import torch

    from hpc_classify.engine.device import compute_dtype

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=2, help="decoder layers to build (real: 32)")
    parser.add_argument("--documents", type=int, default=2, help="documents timed per classifier")
    parser.add_argument("--prompt-tokens", type=int, default=1000, help="Aegis prompt length (template ~900)")
    parser.add_argument(
        "--guard-tokens", type=int, default=500, help="instruction-data-guard document length"
    )
    parser.add_argument("--new-tokens", type=int, default=100, help="Aegis max_new_tokens (NeMo: 100)")
    parser.add_argument(
        "--short-answer", type=int, default=5, help="answer length when the model stops early"
    )
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default="auto")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda; on a GPU use --layers 32")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--lora-rank", type=int, default=8)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads or len(os.sched_getaffinity(0)))
    device = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}.get(args.dtype) or compute_dtype(device, True)
    model_name, isa = cpu_description()
    print(f"CPU: {model_name} ({isa}); {torch.get_num_threads()} torch threads; torch {torch.__version__}")
    print(f"dtype: {dtype}; layers built: {args.layers} of {REAL_LAYERS} (times extrapolated linearly)")

    start = time.perf_counter()
    model = build_model(args.layers, dtype, args.lora_rank).to(device)
    print(f"built in {time.perf_counter() - start:.1f} s")
    decoder = model.get_base_model().get_decoder()
    lm_head = model.get_base_model().lm_head
    generator = torch.Generator().manual_seed(0)

    def ids(length: int) -> torch.Tensor:
        return torch.randint(3, LLAMA_GUARD_ARCH["vocab_size"], (1, length), generator=generator).to(device)

    def generate(prompt: torch.Tensor, new_tokens: int) -> None:
        model.generate(
            input_ids=prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,  # random weights: never stop early
            do_sample=False,
            pad_token_id=0,
        )

    with torch.inference_mode():
        generate(ids(32), 2)  # warm-up
        head = timed(
            lambda: lm_head(torch.zeros(1, 1, LLAMA_GUARD_ARCH["hidden_size"], dtype=dtype, device=device)), 5
        )
        prefill = [timed(lambda: decoder(input_ids=ids(args.prompt_tokens))) for _ in range(args.documents)]
        full = [
            timed(lambda: generate(ids(args.prompt_tokens), args.new_tokens)) for _ in range(args.documents)
        ]
        short = [
            timed(lambda: generate(ids(args.prompt_tokens), args.short_answer)) for _ in range(args.documents)
        ]
        guard = [timed(lambda: decoder(input_ids=ids(args.guard_tokens))) for _ in range(args.documents)]

    scale = REAL_LAYERS / args.layers

    def per_document(samples: list[float], head_calls: int) -> float:
        measured = sum(samples) / len(samples)
        return (measured - head_calls * head) * scale + head_calls * head

    rows = [
        (f"Aegis prefill only ({args.prompt_tokens} tokens)", per_document(prefill, 0)),
        (f"Aegis, {args.new_tokens} new tokens (NeMo max_new_tokens)", per_document(full, args.new_tokens)),
        (f"Aegis, {args.short_answer} new tokens (early stop)", per_document(short, args.short_answer)),
        (f"InstructionDataGuard prefill ({args.guard_tokens} tokens)", per_document(guard, 0)),
    ]
    print(f"LM head: {head * 1e3:.1f} ms per token (counted once, not scaled)")
    print(f"Extrapolated to {REAL_LAYERS} layers from {args.layers} (x{scale:g} on the decoder layers):")
    for name, seconds in rows:
        print(f"  {name:<52} {seconds:9.1f} s/document {seconds * 1000 / 3600:9.1f} h per 1,000 documents")
    print("One document at a time; batching helps on a GPU, little on a CPU (compute-bound prefill).")


if __name__ == "__main__":
    main()
