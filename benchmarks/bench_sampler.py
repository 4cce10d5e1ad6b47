"""Sampler throughput on the embedded tiny model against a plain one-prompt-at-a-time loop.

    .venv/bin/python benchmarks/bench_sampler.py                       # CPU, the figures in docs/sampler.md
    .venv/bin/python benchmarks/bench_sampler.py --device cuda         # 1 GPU
    .venv/bin/python benchmarks/bench_sampler.py --gen_lengths 128 --batches 16 --threads 2

For each gen_length (steps = gen_length / 2, block_length 32) and batch size it times
`DiffusionSampler.generate` on the whole batch and `reference_generate` (below: the same greedy
low-confidence algorithm, one prompt at a time, full-sequence softmax, no batching) on the same prompts,
checks that both produce the same tokens, and prints generated tokens per second. The last column is the
ceiling batching can give on this machine: the time of B single-prompt forward passes over the time of one
batched forward pass of the same (final) length, i.e. what the model itself gains from the batch.
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from gift.adapters import adapter_for
from gift.embedded_model import build_embedded_model
from gift.sampler import DiffusionSampler, SamplerConfig, encode_chat_prompts

QUESTIONS = [
    "What is 7 + 5?",
    "Compute 128 - 37.",
    "A farmer has 12 cows and buys 9 more. How many cows?",
    "Solve for x: 3x + 4 = 19.",
    "What is 6 * 7?",
    "Tom reads 15 pages a day for 4 days. Pages read?",
    "Is 91 prime?",
    "Sum of the first 10 positive integers?",
    "Fill the 4x4 sudoku: 1..4 / ..1. / .3.. / 4..1",
    "Use 3, 5, 7 and 11 to make 24.",
    "What is 2 to the power 9?",
    "A train goes 60 km/h for 2.5 hours. Distance?",
    "Round 3.14159 to two decimals.",
    "Half of 250, plus 17?",
    "How many minutes are in 3 and a half hours?",
    "What is the remainder of 100 divided by 7?",
]


@torch.no_grad()
def reference_generate(model, adapter, prompt: list[int], gen_length: int, block_length: int, steps: int):
    """The same algorithm written plainly for one prompt (greedy, low-confidence remasking)."""
    device = next(model.parameters()).device
    mask_id = adapter.mask_token_id
    x = torch.tensor([prompt + [mask_id] * gen_length], device=device)
    attention = torch.ones_like(x)
    blocks = gen_length // block_length
    steps_per_block = steps // blocks
    for b in range(blocks):
        start = len(prompt) + b * block_length
        end = start + block_length
        remaining = int((x[0, start:end] == mask_id).sum())
        for i in range(steps_per_block):
            k = remaining // steps_per_block + (1 if i < remaining % steps_per_block else 0)
            logits = adapter.logits(model, x, attention)[0].float()
            logits[:, mask_id] = -math.inf
            probs = torch.softmax(logits, dim=-1)
            x0 = probs.argmax(-1)
            confidence = probs.gather(-1, x0[:, None])[:, 0]
            confidence[:start] = -math.inf
            confidence[end:] = -math.inf
            confidence[x[0] != mask_id] = -math.inf
            chosen = torch.topk(confidence, k).indices
            x[0, chosen] = x0[chosen]
    return x[0, len(prompt):]


def timed(fn):
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return result, time.perf_counter() - start


@torch.no_grad()
def forward_ceiling(model, adapter, prompts: list[list[int]], gen_length: int, repeats: int = 3) -> float:
    """B single forwards / one batched forward, at the final sequence lengths."""
    mask_id = adapter.mask_token_id
    width = max(map(len, prompts)) + gen_length
    ids = torch.full((len(prompts), width), adapter.pad_token_id)
    attention = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) - gen_length:] = torch.tensor(p + [mask_id] * gen_length)
        attention[i, width - len(p) - gen_length:] = 1
    device = next(model.parameters()).device
    ids, attention = ids.to(device), attention.to(device)
    singles = [ids[i: i + 1, attention[i].argmax():] for i in range(len(prompts))]
    adapter.logits(model, ids, attention)  # warm-up
    single = min(timed(lambda: [adapter.logits(model, s, torch.ones_like(s)) for s in singles])[1]
                 for _ in range(repeats))
    batched = min(timed(lambda: adapter.logits(model, ids, attention))[1] for _ in range(repeats))
    return single / batched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gen_lengths", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--block_length", type=int, default=32)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tokenizer = build_embedded_model(args.preset, seed=0)
    model.to(args.device).eval()
    adapter = adapter_for("embedded", tokenizer)
    prompts = encode_chat_prompts(tokenizer, QUESTIONS * (1 + max(args.batches) // len(QUESTIONS)), "<reasoning>")
    # warm-up (allocator, kernels)
    DiffusionSampler(model, adapter, SamplerConfig(gen_length=32, block_length=32, steps=4)).generate(prompts[:2])

    print(f"device={args.device} threads={torch.get_num_threads()} preset={args.preset} "
          f"block_length={args.block_length} steps=gen_length/2, greedy low_confidence")
    print(f"{'gen_len':>7} {'batch':>5} {'sampler tok/s':>14} {'reference tok/s':>16} {'speedup':>8} "
          f"{'same tokens':>11} {'forward ceiling':>15}")
    for gen_length in args.gen_lengths:
        config = SamplerConfig(gen_length=gen_length, block_length=args.block_length, steps=gen_length // 2)
        sampler = DiffusionSampler(model, adapter, config)
        for batch in args.batches:
            batch_prompts = prompts[:batch]
            out, t_sampler = timed(lambda: sampler.generate(batch_prompts))
            refs, t_ref = timed(lambda: [
                reference_generate(model, adapter, p, gen_length, args.block_length, config.steps)
                for p in batch_prompts
            ])
            same = all(torch.equal(out.completion_ids[i], r) for i, r in enumerate(refs))
            tokens = batch * gen_length
            ceiling = forward_ceiling(model, adapter, batch_prompts, gen_length)
            print(f"{gen_length:>7} {batch:>5} {tokens / t_sampler:>14.1f} {tokens / t_ref:>16.1f} "
                  f"{t_ref / t_sampler:>7.2f}x {str(same):>11} {ceiling:>14.2f}x", flush=True)


if __name__ == "__main__":
    main()
