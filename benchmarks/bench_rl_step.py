"""One diffu-GRPO step's time split on the embedded model: rollout / old+ref log-probs / policy update.

    .venv/bin/python benchmarks/bench_rl_step.py                     # the embedded Sudoku recipe's shapes
    .venv/bin/python benchmarks/bench_rl_step.py --gen_length 64 --block_length 16 --diffusion_steps 32

Times the three phases of `stages.rl.DiffuGRPOTrainer` directly (same functions the trainer calls),
median over `--repeats` generation batches, with mu inner iterations of old and reference log-probs.
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
    parser.add_argument("--diffusion_steps", type=int, default=12)
    parser.add_argument("--num_iterations", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from gift.adapters import adapter_for
    from gift.diffu_grpo import completion_logps, completion_mask_until_eos, diffu_grpo_loss, draw_prompt_masks
    from gift.embedded_model import build_embedded_model
    from gift.sampler import DiffusionSampler, SamplerConfig, encode_chat_prompts
    from stages.synthetic import synthetic_rows

    model, tokenizer = build_embedded_model("tiny")
    adapter = adapter_for("embedded", tokenizer)
    reference = build_embedded_model("tiny")[0].eval()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    prompts = [r["prompt"] for r in synthetic_rows("sudoku", "train", args.batch)]
    sampler = DiffusionSampler(model, adapter, SamplerConfig(gen_length=args.gen_length, block_length=args.block_length,
                                                             steps=args.diffusion_steps, temperature=0.9))
    phases = {"rollout": [], "old+ref log-probs": [], "policy update": []}
    g = torch.Generator().manual_seed(0)
    for _ in range(args.repeats):
        started = time.perf_counter()
        out = sampler.generate(encode_chat_prompts(tokenizer, prompts), generator=g)
        phases["rollout"].append(time.perf_counter() - started)
        plen = out.prompt_length
        p_ids, p_attn, c_ids = out.sequences[:, :plen], out.attention_mask[:, :plen], out.completion_ids
        masks = draw_prompt_masks(p_attn, 0.15, args.num_iterations, g)
        started = time.perf_counter()
        with torch.no_grad():
            old = [completion_logps(model, adapter, p_ids, p_attn, c_ids, masks[:, k]) for k in range(args.num_iterations)]
            ref = [completion_logps(reference, adapter, p_ids, p_attn, c_ids, masks[:, k]) for k in range(args.num_iterations)]
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
    total = sum(statistics.median(v) for v in phases.values())
    print(f"diffu-GRPO generation batch: {args.batch} completions x {args.gen_length} tokens, "
          f"{args.diffusion_steps} sampler steps, mu = {args.num_iterations}")
    print("| phase | median s | share |\n|---|---|---|")
    for name, values in phases.items():
        print(f"| {name} | {statistics.median(values):.3f} | {statistics.median(values) / total:.0%} |")
    print(f"| total (mu optimizer steps) | {total:.3f} | 100% |")


if __name__ == "__main__":
    main()
