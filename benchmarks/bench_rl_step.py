"""One diffu-GRPO step's time split on the embedded model: rollout / old+ref log-probs / policy update.

    .venv/bin/python benchmarks/bench_rl_step.py                     # the embedded Sudoku recipe's shapes
    .venv/bin/python benchmarks/bench_rl_step.py --gen_length 64 --block_length 16 --steps 32
    .venv/bin/python benchmarks/bench_rl_step.py --model runs/sft --variants fixed thr0.9 thr0.9+dual

Times the three phases of `stages.train.rl.DiffuGRPOTrainer` directly (same functions the trainer calls),
median over `--repeats` generation batches, with mu inner iterations of old and reference log-probs.
Rollout variants (`--variants`: `fixed` = today's schedule, `thrX` = threshold X, `factorX`, each
optionally `+sched` (min_commit=schedule), `+eos` (eos_stop), `+lookN` (lookahead N blocks) and `+prefix` /
`+dual` for the KV cache) run interleaved in one process, each generation batch
cycling through them, so machine load falls on all alike. A random-init model is never confident, so
threshold decoding needs a trained checkpoint (`--model`) to show its effect.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=24, help="completions per generation batch")
    parser.add_argument("--gen_length", type=int, default=24)
    parser.add_argument("--block_length", type=int, default=8)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--num_iterations", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default=None, help="checkpoint to start from (default: random-init tiny)")
    parser.add_argument("--variants", nargs="+", default=["fixed"], help="rollout decoders, e.g. fixed thr0.9+dual")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    from gift.adapters import adapter_for
    from gift.diffu_grpo import completion_logps, completion_mask_until_eos, diffu_grpo_loss, draw_prompt_masks
    from gift.embedded_model import build_embedded_model
    from gift.sampler import DiffusionSampler, SamplerConfig, encode_chat_prompts
    from rewards.data.synthetic import synthetic_rows

    if args.model:
        from gift.checkpoint import load_model

        loaded = load_model(args.model)
        model, tokenizer, adapter = loaded.model, loaded.tokenizer, loaded.adapter
        reference = load_model(args.model).model.eval()
    else:
        model, tokenizer = build_embedded_model("tiny")
        adapter = adapter_for("embedded", tokenizer)
        reference = build_embedded_model("tiny")[0].eval()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    prompts = [r["prompt"] for r in synthetic_rows("sudoku", "train", args.batch)]
    samplers = {
        name: DiffusionSampler(
            model,
            adapter,
            SamplerConfig(
                gen_length=args.gen_length,
                block_length=args.block_length,
                steps=args.steps,
                temperature=0.9,
                **variant_options(name),
            ),
        )
        for name in args.variants
    }
    results = {
        name: {"rollout": [], "old+ref log-probs": [], "policy update": [], "calls": []} for name in args.variants
    }
    g = torch.Generator().manual_seed(0)
    for repeat in range(args.repeats):
        for name in args.variants[repeat % len(args.variants) :] + args.variants[: repeat % len(args.variants)]:
            phases = results[name]
            started = time.perf_counter()
            out = samplers[name].generate(encode_chat_prompts(tokenizer, prompts), generator=g)
            phases["rollout"].append(time.perf_counter() - started)
            phases["calls"].append(float(out.model_calls.float().mean()))
            plen = out.prompt_length
            p_ids, p_attn, c_ids = out.sequences[:, :plen], out.attention_mask[:, :plen], out.completion_ids
            masks = draw_prompt_masks(p_attn, 0.15, args.num_iterations, g)
            started = time.perf_counter()
            with torch.no_grad():
                old = [
                    completion_logps(model, adapter, p_ids, p_attn, c_ids, masks[:, k])
                    for k in range(args.num_iterations)
                ]
                ref = [
                    completion_logps(reference, adapter, p_ids, p_attn, c_ids, masks[:, k])
                    for k in range(args.num_iterations)
                ]
            phases["old+ref log-probs"].append(time.perf_counter() - started)
            advantages = torch.randn(args.batch)
            c_mask = completion_mask_until_eos(c_ids, adapter.eos_token_id)
            started = time.perf_counter()
            for k in range(args.num_iterations):
                logps = completion_logps(model, adapter, p_ids, p_attn, c_ids, masks[:, k])
                loss = diffu_grpo_loss(logps, old[k], ref[k], advantages, c_mask).loss
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            phases["policy update"].append(time.perf_counter() - started)
    print(
        f"diffu-GRPO generation batch: {args.batch} completions x {args.gen_length} tokens, block "
        f"{args.block_length}, {args.steps} fixed sampler steps, temperature 0.9, mu = {args.num_iterations}, "
        f"model {args.model or 'random-init tiny'}, {args.repeats} generation batches interleaved over the variants"
    )
    print(
        "| rollout variant | model calls / seq | rollout s | old+ref log-probs s | policy update s | total s | "
        "rollout share |\n|---|---|---|---|---|---|---|"
    )
    for name, phases in results.items():
        med = {k: statistics.median(v) for k, v in phases.items()}
        total = med["rollout"] + med["old+ref log-probs"] + med["policy update"]
        print(
            f"| {name} | {med['calls']:.2f} | {med['rollout']:.3f} | {med['old+ref log-probs']:.3f} | "
            f"{med['policy update']:.3f} | {total:.3f} | {med['rollout'] / total:.0%} |"
        )


def variant_options(name: str) -> dict:
    """`fixed`, `thr0.9`, `factor1.0`, then optionally `+sched` (min_commit=schedule), `+eos` (eos_stop),
    `+lookN` (lookahead=N) and `+prefix` / `+dual`."""
    decoder, *extras = name.split("+")
    options: dict = {"kv_cache": "none"}
    for extra in extras:
        if extra == "sched":
            options["min_commit"] = "schedule"
        elif extra in ("prefix", "dual"):
            options["kv_cache"] = extra
        elif extra == "eos":
            options["eos_stop"] = True
        elif extra.startswith("look") and extra[4:].isdigit():
            options["lookahead"] = int(extra[4:])
        else:
            raise ValueError(f"unknown rollout variant option {extra!r} in {name!r}: sched, eos, lookN, prefix or dual")
    if decoder.startswith("thr"):
        options["threshold"] = float(decoder[3:])
    elif decoder.startswith("factor"):
        options["factor"] = float(decoder[6:])
    elif decoder != "fixed":
        raise ValueError(f"unknown rollout variant {name!r}: fixed, thrX or factorX, optionally +prefix/+dual")
    return options


if __name__ == "__main__":
    main()
