"""Stage-one step time and peak memory: GIFT (live and cached beta) against masked-diffusion SFT.

    .venv/bin/python benchmarks/bench_cold_start.py              # embedded tiny + mid (~25M, 32k vocab), CPU
    .venv/bin/python benchmarks/bench_cold_start.py --models tiny --steps 30

One training step = the shared `gift.loss.diffusion_loss` (GIFT: probe + masked forward; SFT: masked
forward) + backward + AdamW step, on random tokens shaped like a stage-one batch. Each (model, objective)
runs in its own subprocess: warm-up steps, then the median of `--steps` timed steps; peak memory is the
subprocess's peak resident set (ru_maxrss). Targets (issue 2): live <= 1.35x SFT, cached <= 1.05x SFT.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

SHAPES = {  # preset -> (batch, sequence length, prompt length)
    "tiny": (64, 48, 18),
    "mid": (8, 512, 64),
}
OBJECTIVES = ("sft", "gift-live", "gift-cached")


def _child(preset: str, objective: str, steps: int, warmup: int) -> dict:
    import torch

    from gift.adapters import ModelAdapter
    from gift.embedded_model import embedded_config
    from gift.loss import diffusion_loss
    from gift.schedules import GiftSchedule, UniformSchedule
    from transformers import LlamaForCausalLM

    torch.manual_seed(0)
    vocab = 32000 if preset == "mid" else 107
    model = LlamaForCausalLM(embedded_config(preset, vocab_size=vocab))
    params = sum(p.numel() for p in model.parameters())
    adapter = ModelAdapter("embedded", mask_token_id=1, eos_token_id=0, pad_token_id=0)
    batch_size, length, prompt = SHAPES[preset]
    g = torch.Generator().manual_seed(0)
    answer = torch.zeros(batch_size, length, dtype=torch.bool)
    answer[:, prompt:] = True
    tail = torch.zeros_like(answer)
    tail[:, -length // 8 :] = True

    def batch():
        return {"input_ids": torch.randint(2, vocab, (batch_size, length), generator=g),
                "attention_mask": torch.ones(batch_size, length, dtype=torch.long), "answer_mask": answer,
                "pad_tail_mask": tail, "index": torch.arange(batch_size)}

    cache_seconds = None
    if objective == "sft":
        schedule = UniformSchedule()
    elif objective == "gift-live":
        schedule = GiftSchedule("live")
    else:  # the one-off probe of every example happens before training; a step only indexes the cache
        started = time.perf_counter()
        from gift.probe import probe_betas

        cache = probe_betas(model, adapter, batch())
        cache_seconds = time.perf_counter() - started
        schedule = GiftSchedule("cached", cache=cache)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    times = []
    for step in range(warmup + steps):
        b = batch()
        started = time.perf_counter()
        out = diffusion_loss(model, adapter, b, schedule)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return {"preset": preset, "objective": objective, "params": params, "median_s": statistics.median(times),
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "cache_probe_s_per_batch": cache_seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child, args.steps, args.warmup)))
        return
    print("| model | params | batch x length | objective | step (median s) | vs SFT | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.models:
        results = {}
        for objective in OBJECTIVES:
            cmd = [sys.executable, __file__, "--child", preset, objective, "--steps", str(args.steps),
                   "--warmup", str(args.warmup)]
            results[objective] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        sft = results["sft"]["median_s"]
        b, length, _ = SHAPES[preset]
        for objective, r in results.items():
            print(f"| {preset} | {r['params'] / 1e6:.1f}M | {b} x {length} | {objective} | {r['median_s']:.4f} | "
                  f"{r['median_s'] / sft:.2f} | {r['peak_mb']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
