"""Sampler throughput on the embedded tiny model against a plain one-prompt-at-a-time loop.

    .venv/bin/python benchmarks/bench_sampler.py                       # CPU, the figures in docs/sampler.md
    .venv/bin/python benchmarks/bench_sampler.py --device cuda         # 1 GPU
    .venv/bin/python benchmarks/bench_sampler.py --gen_lengths 128 --batches 16 --threads 2
    .venv/bin/python benchmarks/bench_sampler.py --threads 1 --checkpoint runs/sft --task sudoku \
        --gen_lengths 24 --block_length 8 --steps 12                  # fixed vs threshold x cache, on a task
    .venv/bin/python benchmarks/bench_sampler.py --checkpoint runs/sft --task sudoku --gen_lengths 24 \
        --block_length 8 --per_block                                  # where the calls go, block by block

With `--checkpoint`, it evaluates a trained checkpoint on the task's synthetic test prompts instead:
today's fixed schedule and threshold decoding (0.7, 0.8, 0.9, and 0.9 with `min_commit=schedule`, `eos_stop`
and `lookahead`; `--decoders` picks some of `EVAL_DECODERS`), each
without a cache and with the prefix and dual caches, interleaved in one process (see `eval_variants`), and prints
accuracy, model calls per sequence, tokens/s, and the share of completions identical to the fixed schedule without a
cache.

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
import statistics
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
def reference_generate(
    model, adapter, prompt: list[int], gen_length: int, block_length: int, steps: int, history: list | None = None
):
    """The same algorithm written plainly for one prompt (greedy, low-confidence remasking): full-sequence
    logits, per-step top-k, no batching. `history`: a list that receives the completion after every step
    (the sampler's exactness test compares it with `return_history`)."""
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
            if history is not None:
                history.append(x[0, len(prompt) :].clone())
    return x[0, len(prompt) :]


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
        ids[i, width - len(p) - gen_length :] = torch.tensor(p + [mask_id] * gen_length)
        attention[i, width - len(p) - gen_length :] = 1
    device = next(model.parameters()).device
    ids, attention = ids.to(device), attention.to(device)
    singles = [ids[i : i + 1, attention[i].argmax() :] for i in range(len(prompts))]
    adapter.logits(model, ids, attention)  # warm-up
    single = min(
        timed(lambda: [adapter.logits(model, s, torch.ones_like(s)) for s in singles])[1] for _ in range(repeats)
    )
    batched = min(timed(lambda: adapter.logits(model, ids, attention))[1] for _ in range(repeats))
    return single / batched


# --------------------------------------------------------------------------- checkpoint evaluation

EVAL_DECODERS = {  # name -> SamplerConfig options on top of the task's lengths
    "fixed": {},
    "thr0.7": {"threshold": 0.7},
    "thr0.8": {"threshold": 0.8},
    "thr0.9": {"threshold": 0.9},
    "thr0.9/sched": {"threshold": 0.9, "min_commit": "schedule"},  # never more calls than `steps`
    # eos_stop: a row stops once its text before the first EOS is decoded (same text, fewer calls)
    "fixed/eos": {"eos_stop": True},
    "thr0.9/eos": {"threshold": 0.9, "eos_stop": True},
    "thr0.9/sched/eos": {"threshold": 0.9, "min_commit": "schedule", "eos_stop": True},
    "thr0.9/look1/eos": {"threshold": 0.9, "lookahead": 1, "eos_stop": True},  # also commits ahead
}
EVAL_CACHES = ("none", "prefix", "dual")


def eval_variants(
    checkpoint: str,
    task: str,
    gen_length: int,
    block_length: int,
    steps: int,
    limit: int,
    batch: int,
    repeats: int,
    caches: list[str],
    decoders: list[str],
) -> list[dict]:
    """Accuracy, model calls per sequence and tokens/s of every decoder x cache on a task's test prompts.

    All variants run in this one process, interleaved batch by batch (variant order rotated every batch),
    so load from other processes falls on all of them alike; tokens/s is generated tokens over the
    median batch time. Greedy decoding: the tokens do not depend on the repeat.
    """
    from gift.checkpoint import load_model
    from rewards import get_task
    from rewards.data.synthetic import synthetic_rows

    loaded = load_model(checkpoint)
    model, tokenizer, adapter = loaded.model.eval(), loaded.tokenizer, loaded.adapter
    rows = synthetic_rows(task, "test", limit)
    prompts = encode_chat_prompts(tokenizer, [r["prompt"] for r in rows], "<reasoning>")
    variants = [(d, c) for d in ["fixed"] + [d for d in decoders if d != "fixed"] for c in caches]
    samplers = {
        (d, c): DiffusionSampler(
            model,
            adapter,
            SamplerConfig(
                gen_length=gen_length, block_length=block_length, steps=steps, kv_cache=c, **EVAL_DECODERS[d]
            ),
        )
        for d, c in variants
    }
    texts = {v: [] for v in variants}
    calls = {v: [] for v in variants}
    times = {v: [] for v in variants}
    samplers[variants[0]].generate(prompts[:2])  # warm-up
    chunks = [prompts[i : i + batch] for i in range(0, len(prompts), batch)]
    for repeat in range(repeats):
        for c, chunk in enumerate(chunks):
            shift = (repeat * len(chunks) + c) % len(variants)
            for v in variants[shift:] + variants[:shift]:
                out, seconds = timed(lambda: samplers[v].generate(chunk))
                times[v].append(seconds / len(chunk))
                if repeat == 0:
                    texts[v].extend(samplers[v].decode(out, tokenizer))
                    calls[v].extend(out.model_calls.tolist())
    spec = get_task(task)
    columns = {col: [r[col] for r in rows] for col in spec.columns}
    results = []
    for v in variants:
        metric = spec.metric(texts[v], **columns)
        rewards = spec.reward_funcs[0](None, texts[v], **columns) if task == "countdown" else None
        same = sum(a == b for a, b in zip(texts[v], texts[variants[0]])) / len(rows)
        results.append(
            {
                "decoder": v[0],
                "cache": v[1],
                "accuracy": metric["accuracy"],
                "solved": metric.get("solved"),
                "mean_reward": None if rewards is None else sum(rewards) / len(rewards),
                "calls": sum(calls[v]) / len(calls[v]),
                "tokens_per_s": gen_length / statistics.median(times[v]),
                "same_text": same,
            }
        )
    return results


def calls_per_block(
    checkpoint: str, task: str, gen_length: int, block_length: int, steps: int, limit: int, decoders: list[str]
) -> None:
    """Where the model calls go: mean calls spent in each block, per decoder (one prompt at a time, no cache).

    With one prompt per `generate` every pass decodes this row, so block b's calls are the passes after
    the one that finished block b-1, up to the one that finishes block b (a block decoded ahead by
    `lookahead` takes none).
    """
    from gift.checkpoint import load_model
    from rewards.data.synthetic import synthetic_rows

    loaded = load_model(checkpoint)
    model, tokenizer, adapter = loaded.model.eval(), loaded.tokenizer, loaded.adapter
    prompts = encode_chat_prompts(tokenizer, [r["prompt"] for r in synthetic_rows(task, "test", limit)], "<reasoning>")
    blocks = gen_length // block_length
    print(f"| decoder | calls / seq | {' | '.join(f'block {b}' for b in range(blocks))} |\n|---|---|{'---|' * blocks}")
    for name in decoders:
        sampler = DiffusionSampler(
            model,
            adapter,
            SamplerConfig(
                gen_length=gen_length,
                block_length=block_length,
                steps=steps,
                return_history=True,
                **EVAL_DECODERS[name],
            ),
        )
        per_block = torch.zeros(blocks)
        for prompt in prompts:
            out = sampler.generate([prompt])
            done = torch.stack(out.history)[:, 0] != adapter.mask_token_id  # (passes, gen_length)
            finished = done.int().argmax(0).view(blocks, block_length).amax(1)  # pass finishing each block
            committed_at = finished.cummax(0).values  # a block decoded ahead ends with the one before it
            per_block += torch.diff(committed_at, prepend=torch.tensor([-1])).float()
        per_block /= len(prompts)
        print(f"| {name} | {per_block.sum():.2f} | {' | '.join(f'{c:.2f}' for c in per_block.tolist())} |", flush=True)


def print_eval(task: str, results: list[dict]) -> None:
    base = results[0]
    print(
        "| task | decoder | cache | accuracy % | solved % | mean reward | calls / seq | calls vs fixed | "
        "tokens/s | speed vs fixed | same text as fixed % |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        solved = "" if r["solved"] is None else f"{100 * r['solved']:.1f}"
        reward = "" if r["mean_reward"] is None else f"{r['mean_reward']:.3f}"
        print(
            f"| {task} | {r['decoder']} | {r['cache']} | {100 * r['accuracy']:.1f} | {solved} | {reward} | "
            f"{r['calls']:.2f} | {base['calls'] / r['calls']:.2f}x | {r['tokens_per_s']:.0f} | "
            f"{r['tokens_per_s'] / base['tokens_per_s']:.2f}x | {100 * r['same_text']:.1f} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gen_lengths", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--block_length", type=int, default=32)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--checkpoint", default=None, help="evaluate this checkpoint's decoders on --task instead")
    parser.add_argument("--task", default="sudoku", choices=("sudoku", "countdown"))
    parser.add_argument("--steps", type=int, default=None, help="fixed-schedule steps (default gen_length / 2)")
    parser.add_argument("--limit", type=int, default=256, help="test prompts (--checkpoint)")
    parser.add_argument("--eval_batch", type=int, default=64, help="prompts per generate call (--checkpoint)")
    parser.add_argument("--repeats", type=int, default=1, help="timing passes over the prompts (--checkpoint)")
    parser.add_argument("--caches", nargs="+", default=list(EVAL_CACHES), choices=EVAL_CACHES)
    parser.add_argument("--per_block", action="store_true", help="mean calls per block, per decoder (--checkpoint)")
    parser.add_argument(
        "--decoders",
        nargs="+",
        default=list(EVAL_DECODERS),
        choices=list(EVAL_DECODERS),
        help="decoders to compare (--checkpoint; `fixed` always runs first, the baseline)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint:
        gen_length = args.gen_lengths[0]
        steps = args.steps or gen_length // 2
        if args.per_block:
            calls_per_block(args.checkpoint, args.task, gen_length, args.block_length, steps, args.limit, args.decoders)
            return
        print(
            f"checkpoint={args.checkpoint} task={args.task} threads={torch.get_num_threads()} gen_length={gen_length} "
            f"block_length={args.block_length} steps={steps} (fixed) limit={args.limit} batch={args.eval_batch} "
            f"repeats={args.repeats}, greedy low_confidence, variants interleaved, median batch time"
        )
        print_eval(
            args.task,
            eval_variants(
                args.checkpoint,
                args.task,
                gen_length,
                args.block_length,
                steps,
                args.limit,
                args.eval_batch,
                args.repeats,
                args.caches,
                args.decoders,
            ),
        )
        return

    model, tokenizer = build_embedded_model(args.preset, seed=0)
    model.to(args.device).eval()
    adapter = adapter_for("embedded", tokenizer)
    prompts = encode_chat_prompts(tokenizer, QUESTIONS * (1 + max(args.batches) // len(QUESTIONS)), "<reasoning>")
    # warm-up (allocator, kernels)
    DiffusionSampler(model, adapter, SamplerConfig(gen_length=32, block_length=32, steps=4)).generate(prompts[:2])

    print(
        f"device={args.device} threads={torch.get_num_threads()} preset={args.preset} "
        f"block_length={args.block_length} steps=gen_length/2, greedy low_confidence"
    )
    print(
        f"{'gen_len':>7} {'batch':>5} {'sampler tok/s':>14} {'reference tok/s':>16} {'speedup':>8} "
        f"{'same tokens':>11} {'forward ceiling':>15}"
    )
    for gen_length in args.gen_lengths:
        config = SamplerConfig(gen_length=gen_length, block_length=args.block_length, steps=gen_length // 2)
        sampler = DiffusionSampler(model, adapter, config)
        for batch in args.batches:
            batch_prompts = prompts[:batch]
            out, t_sampler = timed(lambda: sampler.generate(batch_prompts))
            refs, t_ref = timed(
                lambda: [
                    reference_generate(model, adapter, p, gen_length, args.block_length, config.steps)
                    for p in batch_prompts
                ]
            )
            same = all(torch.equal(out.completion_ids[i], r) for i, r in enumerate(refs))
            tokens = batch * gen_length
            ceiling = forward_ceiling(model, adapter, batch_prompts, gen_length)
            print(
                f"{gen_length:>7} {batch:>5} {tokens / t_sampler:>14.1f} {tokens / t_ref:>16.1f} "
                f"{t_ref / t_sampler:>7.2f}x {str(same):>11} {ceiling:>14.2f}x",
                flush=True,
            )


if __name__ == "__main__":
    main()
