"""Stage-one step time and peak memory: GIFT (live and cached beta) against masked-diffusion SFT.

    .venv/bin/python benchmarks/bench_cold_start.py              # embedded tiny + mid (~25M, 32k vocab), CPU
    .venv/bin/python benchmarks/bench_cold_start.py --models tiny --steps 30
    .venv/bin/python benchmarks/bench_cold_start.py --interleaved --models tiny mid   # beta_refresh_steps k
    .venv/bin/python benchmarks/bench_cold_start.py --interleaved --models mid --ks 1 4 --steps 6
    .venv/bin/python benchmarks/bench_cold_start.py --probe_parts --models tiny --steps 30 --threads 1

One training step = the shared `gift.loss.diffusion_loss` (GIFT: probe + masked forward; SFT: masked
forward) + backward + AdamW step, on random tokens shaped like a stage-one batch. Each (model, objective)
runs in its own subprocess: warm-up steps, then the median of `--steps` timed steps; peak memory is the
subprocess's peak resident set (ru_maxrss). Targets (issue 2): live <= 1.35x SFT, cached <= 1.05x SFT.

`--interleaved` runs SFT, GIFT with beta_refresh_steps k = 1, 2, 4, 8 and cached GIFT in ONE process, one
model copy each (same init, same batches), the variants taking turns every step (order rotated), so load
from other processes falls on all alike; it reports median step times, the ratio to SFT (the median of each round's
step time over that round's SFT step, which cancels load swings between rounds) and the probe's share of
a live (k = 1) step (the probe timed inside that step). For k > 1 both are amortised:
(median over probing steps + (k - 1) x median over reusing steps) / k. Targets (issue 14): k = 1 <= 1.30x,
k = 4 <= 1.10x.
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


def _setup(preset: str):
    """The benchmark's model (seed 0), adapter and fixed answer / pad-tail masks for `preset`."""
    import torch
    from transformers import LlamaForCausalLM

    from gift.adapters import ModelAdapter
    from gift.embedded_model import embedded_config

    torch.manual_seed(0)
    vocab = 32000 if preset == "mid" else 107
    model = LlamaForCausalLM(embedded_config(preset, vocab_size=vocab))
    adapter = ModelAdapter("embedded", mask_token_id=1, eos_token_id=0, pad_token_id=0)
    batch_size, length, prompt = SHAPES[preset]
    answer = torch.zeros(batch_size, length, dtype=torch.bool)
    answer[:, prompt:] = True
    tail = torch.zeros_like(answer)
    tail[:, -length // 8 :] = True
    return model, adapter, vocab, batch_size, length, answer, tail


def _random_batch(g, vocab: int, batch_size: int, length: int, answer, tail, first: int = 0) -> dict:
    """One batch of random token ids (drawn from `g`) over the fixed masks; its examples are numbered from `first`."""
    import torch

    return {
        "input_ids": torch.randint(2, vocab, (batch_size, length), generator=g),
        "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": tail,
        "index": torch.arange(first, first + batch_size),
    }


def _child(preset: str, objective: str, steps: int, warmup: int) -> dict:
    import torch

    from gift.loss import diffusion_loss
    from gift.schedules import GiftSchedule, UniformSchedule

    model, adapter, vocab, batch_size, length, answer, tail = _setup(preset)
    params = sum(p.numel() for p in model.parameters())
    g = torch.Generator().manual_seed(0)

    def batch():
        return _random_batch(g, vocab, batch_size, length, answer, tail)

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
    return {
        "preset": preset,
        "objective": objective,
        "params": params,
        "median_s": statistics.median(times),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "cache_probe_s_per_batch": cache_seconds,
    }


REFRESH = (1, 2, 4, 8)


def interleaved(preset: str, steps: int, warmup: int, pool: int = 4, refresh: tuple[int, ...] = REFRESH) -> list[dict]:
    """Median step time of SFT, GIFT k = 1, 2, 4, 8 and cached GIFT, interleaved step by step."""
    import copy

    import torch

    from gift.loss import diffusion_loss
    from gift.probe import probe_betas
    from gift.schedules import GiftSchedule, UniformSchedule

    base, adapter, vocab, batch_size, length, answer, tail = _setup(preset)
    g = torch.Generator().manual_seed(0)
    # A pool of batches cycled over the steps, so examples come back and k > 1 reuses their betas.
    batches = [_random_batch(g, vocab, batch_size, length, answer, tail, first=i * batch_size) for i in range(pool)]
    started = time.perf_counter()
    store = torch.zeros(pool * batch_size, length)
    for b in batches:  # the one-off probe of every example (cached; k > 1 starts from it)
        store[b["index"]] = probe_betas(base, adapter, b)
    one_off = time.perf_counter() - started

    variants = {"sft": UniformSchedule()}
    for k in sorted(set(refresh) | {1}):  # k = 1 is the probe-share reference
        variants[f"gift k={k}"] = GiftSchedule("live", beta_refresh_steps=k, cache=store.clone() if k > 1 else None)
    variants["gift cached"] = GiftSchedule("cached", cache=store.clone())
    probe_times: list[float] = []
    live = variants["gift k=1"]
    live_betas = live.betas

    def timed_betas(*args):
        t0 = time.perf_counter()
        out = live_betas(*args)
        probe_times.append(time.perf_counter() - t0)
        return out

    live.betas = timed_betas
    models = {name: copy.deepcopy(base).train() for name in variants}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    refresh_times: dict[str, list[float]] = {name: [] for name in names}  # steps where k > 1 probed
    # Per-round ratio to the SFT step of the same round: load changes between rounds (this machine swings
    # between two speeds), far less within one.
    ratios: dict[str, list[float]] = {name: [] for name in names}
    refresh_ratios: dict[str, list[float]] = {name: [] for name in names}
    probe_share: list[float] = []
    for step in range(warmup + steps):
        batch = batches[step % pool]
        round_times: dict[str, float] = {}
        for name in names[step % len(names) :] + names[: step % len(names)]:
            schedule, model, optimizer = variants[name], models[name], optimizers[name]
            schedule.step = step
            probes_before = len(probe_times)
            t0 = time.perf_counter()
            out = diffusion_loss(model, adapter, batch, schedule)
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            seconds = time.perf_counter() - t0
            round_times[name] = seconds
            if step >= warmup:
                refreshed = (
                    name.startswith("gift k=")
                    and schedule.beta_refresh_steps > 1
                    and step % schedule.beta_refresh_steps == 0
                )
                (refresh_times if refreshed else times)[name].append(seconds)
                if len(probe_times) > probes_before:
                    probe_share.append(probe_times[-1] / seconds)
        if step >= warmup:
            for name in names:
                refreshed = (
                    name.startswith("gift k=")
                    and variants[name].beta_refresh_steps > 1
                    and step % variants[name].beta_refresh_steps == 0
                )
                (refresh_ratios if refreshed else ratios)[name].append(round_times[name] / round_times["sft"])

    def amortised(name: str) -> float:
        # k > 1 alternates one probing step with k - 1 reusing ones: a plain median would pick one kind.
        if not refresh_times[name]:
            return statistics.median(times[name])
        k = variants[name].beta_refresh_steps
        return (statistics.median(refresh_times[name]) + (k - 1) * statistics.median(times[name])) / k

    def amortised_ratio(name: str) -> float:
        if not refresh_ratios[name]:
            return statistics.median(ratios[name])
        k = variants[name].beta_refresh_steps
        return (statistics.median(refresh_ratios[name]) + (k - 1) * statistics.median(ratios[name])) / k

    rows = [
        {"preset": preset, "variant": name, "median_s": amortised(name), "ratio": amortised_ratio(name)}
        for name in names
    ]
    rows.append(
        {
            "preset": preset,
            "probe_share_of_live_step": statistics.median(probe_share),
            "one_off_probe_s_per_example": one_off / (pool * batch_size),
        }
    )
    return rows


def probe_parts(preset: str, repeats: int) -> dict[str, float]:
    """Median time of an SFT step and of the probe's parts, each over the SFT step (interleaved repeats).

    `probe` is `gift.probe.probe_signal` as training runs it (LM head on answer positions only);
    `probe, full logits` the same through the adapter's full logits (the path of models without
    `split_head`); `body` the decoder body alone (no LM head: the floor of any probe that runs the whole
    model); `full forward` body + LM head on every position.
    """
    import dataclasses

    import torch

    from gift.loss import diffusion_loss
    from gift.probe import probe_signal
    from gift.schedules import UniformSchedule

    model, adapter, vocab, batch_size, length, answer, tail = _setup(preset)
    g = torch.Generator().manual_seed(0)
    batch = {
        "input_ids": torch.randint(2, vocab, (batch_size, length), generator=g),
        "attention_mask": torch.ones(batch_size, length, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": tail,
        "index": torch.arange(batch_size),
    }
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    probe_ids = batch["input_ids"].masked_fill(answer, adapter.mask_token_id)
    inputs = adapter.model_inputs(probe_ids, batch["attention_mask"])

    def sft_step() -> None:
        model.train()
        out = diffusion_loss(model, adapter, batch, UniformSchedule())
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    def no_grad_eval(fn):
        def run() -> None:
            model.eval()
            with torch.inference_mode():
                fn()

        return run

    parts = {
        "sft step": sft_step,
        "probe": lambda: probe_signal(model, adapter, batch["input_ids"], batch["attention_mask"], answer),
        "probe, full logits": lambda: probe_signal(
            model, dataclasses.replace(adapter, kind="llada"), batch["input_ids"], batch["attention_mask"], answer
        ),
        "body": no_grad_eval(lambda: model.model(**inputs)),
        "full forward": no_grad_eval(lambda: model(**inputs)),
    }
    times: dict[str, list[float]] = {name: [] for name in parts}
    for repeat in range(repeats + 1):  # the first round warms up
        for name, fn in parts.items():
            t0 = time.perf_counter()
            fn()
            if repeat:
                times[name].append(time.perf_counter() - t0)
    sft = statistics.median(times["sft step"])
    return {name: statistics.median(t) / sft for name, t in times.items()} | {"sft_s": sft}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--interleaved", action="store_true", help="beta_refresh_steps k = 1, 2, 4, 8 in one process")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (--interleaved)")
    parser.add_argument(
        "--probe_parts",
        action="store_true",
        help="time an SFT step and the probe's parts (body, full forward, probe) instead",
    )
    parser.add_argument(
        "--ks",
        type=int,
        nargs="+",
        default=list(REFRESH),
        help="beta_refresh_steps values to time (--interleaved; k = 1 always runs)",
    )
    args = parser.parse_args(argv)
    if args.probe_parts:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(f"threads={torch.get_num_threads()}, {args.steps} interleaved repeats, median time over the SFT step's")
        print(
            "| model | sft step s | probe | probe, full logits | body only | full forward |\n|---|---|---|---|---|---|"
        )
        for preset in args.models:
            r = probe_parts(preset, args.steps)
            print(
                f"| {preset} | {r['sft_s']:.4f} | {r['probe']:.3f} | {r['probe, full logits']:.3f} | {r['body']:.3f} | "
                f"{r['full forward']:.3f} |",
                flush=True,
            )
        return
    if args.interleaved:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        print(
            f"threads={torch.get_num_threads()}, {args.steps} timed steps after {args.warmup} warm-up, variants "
            "interleaved step by step in one process, median step time, vs SFT = median per-round ratio"
        )
        print("| model | batch x length | variant | step (median s) | vs SFT |\n|---|---|---|---|---|")
        for preset in args.models:
            rows = interleaved(preset, args.steps, args.warmup, refresh=tuple(args.ks))
            b, length, _ = SHAPES[preset]
            for r in rows[:-1]:
                print(
                    f"| {preset} | {b} x {length} | {r['variant']} | {r['median_s']:.4f} | {r['ratio']:.2f} |",
                    flush=True,
                )
            extra = rows[-1]
            print(
                f"probe share of a live (k = 1) step, {preset}: {extra['probe_share_of_live_step']:.0%}; one-off probe "
                f"{1000 * extra['one_off_probe_s_per_example']:.2f} ms per example",
                flush=True,
            )
        return
    if args.child:
        print(json.dumps(_child(*args.child, args.steps, args.warmup)))
        return
    print("| model | params | batch x length | objective | step (median s) | vs SFT | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.models:
        results = {}
        for objective in OBJECTIVES:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                preset,
                objective,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
            ]
            results[objective] = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        sft = results["sft"]["median_s"]
        b, length, _ = SHAPES[preset]
        for objective, r in results.items():
            print(
                f"| {preset} | {r['params'] / 1e6:.1f}M | {b} x {length} | {objective} | {r['median_s']:.4f} | "
                f"{r['median_s'] / sft:.2f} | {r['peak_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
