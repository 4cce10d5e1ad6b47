"""Does one update along an estimator's full-batch gradient raise the sampled reward? (docs/rl_comparison.md)

From a stage-one checkpoint, draw G completions for each of N training prompts, compute each estimator's
gradient on that whole batch, take one Adam-like step (every parameter moves by `eps` against the sign of
its gradient, which is what Adam's first update does at learning rate eps), and measure the mean sampled
reward again: on the same prompts (in-sample, 2 rollout seeds) and on 384 other training prompts. A random
sign direction is the control: it tells how much a step of that size costs when it carries no signal.

    python benchmarks/bench_rl_direction.py --model runs/sft/checkpoint-300 --eps 3e-4 1e-3
"""

from __future__ import annotations

import argparse
import copy

import torch

from gift.checkpoint import load_model
from gift.diffu_grpo import completion_mask_until_eos
from gift.estimators import build_estimator, masked_logps, settings_from_options
from gift.sampler import DiffusionSampler, SamplerConfig, encode_chat_prompts
from rewards import get_task
from stages.train.rl_data import rl_rows

VARIANTS = {  # name -> (algorithm, settings overrides, advantage transform)
    "d1": ("d1", {}, None),
    "wd1": ("wd1", {}, None),
    "unigrpo": ("unigrpo", {"num_t": 2}, None),
    "spg (mix)": ("spg", {"num_t": 2}, None),
    "spg (elbo both ways)": ("spg", {"num_t": 2, "spg_negative": "elbo"}, None),
    "spg, positive advantages only": ("spg", {"num_t": 2}, lambda a: a.clamp_min(0)),
}
COUPLED = " coupled"  # suffix: every completion of a group gets its first completion's masked positions


def couple_groups(noise: torch.Tensor, completion_mask: torch.Tensor, plen: int, generations: int) -> torch.Tensor:
    """The group's first row's noise for every row of the group (B, mu, K, P + L); positions after a row's
    own EOS stay masked (they are never scored). What d1 gets for free by masking the whole completion."""
    shape = noise.shape
    coupled = noise.view(-1, generations, *shape[1:])[:, :1].expand(-1, generations, *shape[1:]).reshape(shape).clone()
    coupled[..., plen:] |= ~completion_mask.bool()[:, None, None]
    return coupled


def rollouts(model, adapter, tokenizer, rows, seed, temperature):
    sampler = DiffusionSampler(
        model, adapter, SamplerConfig(gen_length=24, block_length=8, steps=12, temperature=temperature)
    )
    with torch.no_grad():
        out = sampler.generate(
            encode_chat_prompts(tokenizer, [r["prompt"] for r in rows]), generator=torch.Generator().manual_seed(seed)
        )
    task = get_task("sudoku")
    columns = {c: [r[c] for r in rows] for c in task.columns}
    rewards = task.reward_funcs[0]([r["prompt"] for r in rows], sampler.decode(out, tokenizer), **columns)
    return out, torch.tensor(rewards)


def direction_study(
    model_path: str,
    variants: list[str],
    eps: list[float],
    prompts: int = 64,
    generations: int = 6,
    temperature: float = 0.9,
) -> list[dict]:
    """Rows `{"variant", "eps", "in_sample", "other"}`; the first row is the unmoved model (variant "none")."""
    loaded = load_model(model_path)
    model, adapter, tokenizer = loaded.model, loaded.adapter, loaded.tokenizer
    rows = rl_rows("sudoku", "synthetic", "train", 2048, 0)
    in_sample = [r for r in rows[:prompts] for _ in range(generations)]
    out_sample = rows[1000:1384]

    def score(m) -> tuple[float, float]:
        inside = (
            sum(rollouts(m, adapter, tokenizer, in_sample, 100 + k, temperature)[1].mean().item() for k in range(2)) / 2
        )
        return inside, rollouts(m, adapter, tokenizer, out_sample, 200, temperature)[1].mean().item()

    out, rewards = rollouts(model, adapter, tokenizer, in_sample, 7, temperature)
    plen = out.prompt_length
    prompt_ids, prompt_attention = out.sequences[:, :plen], out.attention_mask[:, :plen]
    completion_ids = out.completion_ids
    completion_mask = completion_mask_until_eos(completion_ids, adapter.eos_token_id)

    def gradient(name: str) -> dict[str, torch.Tensor]:
        if name == "random":
            gen = torch.Generator().manual_seed(0)
            return {n: torch.randn(p.shape, generator=gen) for n, p in model.named_parameters()}
        algorithm, overrides, transform = VARIANTS[name.removesuffix(COUPLED)]
        settings = settings_from_options(algorithm, {"beta": 0.0, **overrides}, context={"block_length": 8})
        estimator = build_estimator(algorithm, settings)
        advantages = estimator.advantages(rewards, generations, scale=False)
        advantages = transform(advantages) if transform else advantages
        noise = estimator.draw_noise(prompt_attention, completion_mask, 1, torch.Generator().manual_seed(3))
        if name.endswith(COUPLED):
            noise = couple_groups(noise, completion_mask, plen, generations)
        noise = noise[:, 0]
        model.zero_grad()
        for rows_ in torch.arange(len(in_sample)).split(96):
            logps = masked_logps(
                model, adapter, prompt_ids[rows_], prompt_attention[rows_], completion_ids[rows_], noise[rows_]
            )
            loss = estimator.loss(
                logps, noise[rows_][..., plen:], None, None, advantages[rows_], completion_mask[rows_]
            ).loss
            (loss * len(rows_) / len(in_sample)).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    base = score(model)
    results = [
        {"variant": "none", "eps": 0.0, "in_sample": base[0], "other": base[1], "batch_reward": rewards.mean().item()}
    ]
    for name in variants:
        grads = gradient(name)
        for step in eps:
            moved = copy.deepcopy(model)
            with torch.no_grad():
                for n, p in moved.named_parameters():
                    if n in grads:
                        p -= step * torch.sign(grads[n])
            inside, outside = score(moved)
            results.append({"variant": name, "eps": step, "in_sample": inside, "other": outside})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--temperature", type=float, default=0.9)
    parser.add_argument("--eps", type=float, nargs="+", default=[3e-4, 1e-3])
    parser.add_argument(
        "--variants",
        nargs="+",
        default=[*VARIANTS, "random"],
        help=f"names from {list(VARIANTS)} or 'random'; append '{COUPLED}' to share a group's masks",
    )
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = direction_study(args.model, args.variants, args.eps, args.prompts, args.generations, args.temperature)
    base = rows[0]
    print(
        f"batch: {args.prompts} prompts x {args.generations}, temperature {args.temperature}, "
        f"reward {base['batch_reward']:.3f}"
    )
    print("| update direction | step (per parameter) | in-sample reward | other prompts |")
    print("|---|---|---|---|")
    for row in rows:
        gain_in, gain_out = row["in_sample"] - base["in_sample"], row["other"] - base["other"]
        print(
            f"| {row['variant']} | {row['eps']:g} | {row['in_sample']:.3f} ({gain_in:+.3f}) | "
            f"{row['other']:.3f} ({gain_out:+.3f}) |"
        )


if __name__ == "__main__":
    main()
