"""Batched decoding at real model shapes against the GPU's roofline (issue 38).

    python benchmarks/bench_decode.py --model qwen2.5-0.5b --batch 64,128,256,512 [--json OUT]
    python benchmarks/bench_decode.py --model qwen2.5-0.5b --batch 256 --decode eager,compiled
    python benchmarks/bench_decode.py --model tiny --device cpu --batch 4   # a smoke run

Builds the architecture from its config with random weights (throughput does not depend on
training; no weights are downloaded), feeds ``--prompt`` random prompt tokens per row, and
generates exactly ``--new`` tokens per row with spear's rollout decoder
(:func:`spear.rollout.generation.generate`: no EOS, sampling at T = 1 with a seeded
generator), with each decoder of ``--decode`` (``eager``, ``static``, ``compiled``: see
:mod:`spear.rollout.generation`), or with transformers' continuous batching
(``transformers-cb``: ``model.generate_batch`` with ``return_logprobs``, the other fast path
the issue names; it samples with its own generator, so not spear's tokens). Each batch size
is timed twice, once with one new token (the prefill, with its first token) and once with
``--new``; the difference is the decode, reported as generated tokens per second. Every
decoder but ``eager`` first runs each shape once untimed, so a compiled one is timed
replaying its graphs, and that first run's time is reported apart.

**Roofline.** A decode step of ``B`` rows reads every weight once and the KV cache in use,
and computes about ``2 x parameters x B`` FLOPs plus attention, so its time is at least
``max(bytes / HBM bandwidth, FLOPs / peak)``; the roofline's tokens/s is ``B`` over that, at
the mean context (prompt + half the new tokens). The GPU's bandwidth and dense bf16 peak come
from :data:`GPUS` by name (the vendor's datasheet numbers); an unknown GPU or the CPU gets no
roofline.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from transformers import ContinuousBatchingConfig, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

from spear.rollout.generation import generate

# the published architectures (their config.json), built here with random weights
MODELS: dict[str, dict] = {
    "qwen2.5-0.5b": dict(
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "qwen2.5-1.5b": dict(
        hidden_size=1536,
        intermediate_size=8960,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    # a CPU-sized smoke shape, not a published model
    "tiny": dict(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=1024,
        tie_word_embeddings=True,
    ),
}
# name substring -> (HBM bytes/s, dense bf16 FLOP/s), from the vendors' datasheets
GPUS: dict[str, tuple[float, float]] = {
    "H200": (4.8e12, 989e12),
    "H100 PCIe": (2.0e12, 756e12),
    "H100": (3.35e12, 989e12),  # SXM
    "A100": (2.0e12, 312e12),  # 80 GB SXM
}


def build(name: str, dtype: torch.dtype, device: str) -> Qwen2ForCausalLM:
    config = Qwen2Config(**MODELS[name], max_position_embeddings=32768, rope_theta=1e6, use_cache=True)
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2ForCausalLM(config)
    return model.to(dtype).eval()


def roofline_tokens_per_s(model: Qwen2ForCausalLM, batch: int, context: float, gpu: str) -> float | None:
    """The decode roofline's tokens/s for ``batch`` rows at ``context`` tokens of cache."""
    limits = next((v for k, v in GPUS.items() if k in gpu), None)
    if limits is None:
        return None
    bandwidth, peak = limits
    cfg = model.config
    parameters = sum(p.numel() for p in model.parameters())
    element = next(model.parameters()).element_size()
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    kv_bytes = 2 * cfg.num_hidden_layers * cfg.num_key_value_heads * head_dim * context * batch * element
    attention_flops = 4 * cfg.num_hidden_layers * cfg.num_attention_heads * head_dim * context * batch
    step = max(
        (parameters * element + kv_bytes) / bandwidth, (2 * parameters * batch + attention_flops) / peak
    )
    return batch / step


def continuous_batching(model, prompts: list[list[int]], new: int) -> list[list[int]]:
    """transformers' continuous batching: sampled ids of each prompt (log-probs returned too)."""
    config = GenerationConfig(
        max_new_tokens=new, do_sample=True, temperature=1.0, eos_token_id=-1, pad_token_id=0
    )
    outputs = model.generate_batch(
        prompts,
        generation_config=config,
        continuous_batching_config=ContinuousBatchingConfig(return_logprobs=True, seed=0),
        warmup=False,
    )
    return [o.generated_tokens for o in outputs.values()]


def timed(model, prompts: list[list[int]], new: int, device: str, decode: str = "eager") -> float:
    generator = torch.Generator(device=device).manual_seed(0)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    if decode == "transformers-cb":
        sampled = continuous_batching(model, prompts, new)
    else:
        outputs = generate(
            model, prompts, max_new_tokens=new, pad_token_id=0, generator=generator, decode=decode
        )
        sampled = [o.token_ids for o in outputs]
    if device == "cuda":
        torch.cuda.synchronize()
    assert len(sampled) == len(prompts) and all(len(s) == new for s in sampled)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-0.5b", choices=sorted(MODELS))
    parser.add_argument("--batch", default="64,128,256,512", help="comma-separated batch sizes")
    parser.add_argument("--prompt", type=int, default=128, help="prompt tokens per row")
    parser.add_argument("--new", type=int, default=128, help="generated tokens per row")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="bfloat16", choices=("bfloat16", "float32"))
    parser.add_argument(
        "--decode", default="eager", help="comma-separated: eager, static, compiled, transformers-cb"
    )
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    model = build(args.model, getattr(torch, args.dtype), args.device)
    gpu = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    parameters = sum(p.numel() for p in model.parameters())
    print(
        f"{args.model} ({parameters / 1e6:.0f}M parameters, random weights, {args.dtype}) on {gpu}; "
        f"{args.prompt} prompt + {args.new} new tokens per row, spear's decoders: {args.decode}"
    )
    rng = torch.Generator().manual_seed(1)
    timed(model, torch.randint(1, 1000, (2, args.prompt), generator=rng).tolist(), 4, args.device)  # warm-up
    rows = []
    print(
        "\n| decoder | batch | first run s (compiles) | prefill s | decode s | decode tokens/s "
        "| roofline tokens/s | share of roofline |"
    )
    print("|---|---|---|---|---|---|---|---|")
    cases = [(d, int(b)) for d in args.decode.split(",") for b in args.batch.split(",")]
    for decode, batch in cases:
        prompts = torch.randint(1, 1000, (batch, args.prompt), generator=rng).tolist()
        first_run_s = 0.0
        if decode != "eager":  # the first run of a shape traces and compiles it (CUDA graphs: captures)
            first_run_s = timed(model, prompts, args.new, args.device, decode)
        prefill = timed(model, prompts, 1, args.device, decode)
        total = timed(model, prompts, args.new, args.device, decode)
        decode_s = max(total - prefill, 1e-9)
        rate = batch * (args.new - 1) / decode_s
        roof = roofline_tokens_per_s(model, batch, args.prompt + args.new / 2, gpu)
        share = f"{100 * rate / roof:.1f}%" if roof else "n/a"
        roof_text = f"{roof:,.0f}" if roof else "n/a"
        print(
            f"| {decode} | {batch} | {first_run_s:.1f} | {prefill:.3f} | {decode_s:.3f} | {rate:,.0f} "
            f"| {roof_text} | {share} |"
        )
        rows.append(
            {
                "decode": decode,
                "first_run_s": first_run_s,
                "model": args.model,
                "device": gpu,
                "dtype": args.dtype,
                "batch": batch,
                "prompt": args.prompt,
                "new": args.new,
                "prefill_s": prefill,
                "decode_s": decode_s,
                "decode_tokens_per_s": rate,
                "roofline_tokens_per_s": roof,
            }
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
