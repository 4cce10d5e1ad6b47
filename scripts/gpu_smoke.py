"""The GPU check as one program writing one JSON (run through scripts/gpu_smoke.sh).

On a random LLaDA-architecture model in the official hub layout (~1.1B parameters: d 2048, 16 heads, 12 layers,
MLP 5632, LLaDA's 126,464-row vocabulary), with the LLaDA recipes shrunk by overrides only:
- stage one, full parameters, bf16 + sdpa, GIFT (live probe) and SFT: median step time and peak memory;
- stage two (diffu-GRPO, LoRA, from the GIFT checkpoint): one step's time and peak memory;
- rollouts: completion tokens per second of the diffusion sampler (no cache and dual cache);
- beside each measured figure, what docs/scaling.md's arithmetic predicts for this model.

`--dry-run`: the same program on a tiny model on CPU (fp32, short sequences), so the test suite knows it
works end to end; its figures are not benchmarks.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
import official_layout as layout  # noqa: E402

GPU_DIMS = dict(d_model=2048, n_heads=16, n_kv_heads=16, n_layers=12, mlp_hidden_size=5632, vocab_size=126464)
DRY_DIMS = dict(layout.LLADA_DIMS)
PEAK_FLOPS = 989e12 * 0.4  # docs/scaling.md: an assumed 40% of an H100/H200's dense bf16 peak


def _peak_reset() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib() -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def predictions(dims: dict, seq: int) -> dict:
    """docs/scaling.md's arithmetic for this model: parameters, FLOPs and state bytes per step (batch 1)."""
    d, layers, f, vocab = dims["d_model"], dims["n_layers"], dims["mlp_hidden_size"], dims["vocab_size"]
    k = d * dims["n_kv_heads"] // dims["n_heads"]
    params = layers * (2 * d * d + 2 * d * k + 3 * d * f + 2 * d) + 2 * vocab * d + d
    forward = 2 * (params - vocab * d) * seq + 4 * layers * seq * seq * d
    return {
        "parameters": params,
        "forward_flops": forward,
        "gift_full_step_s": 5 * forward / PEAK_FLOPS,
        "sft_full_step_s": 4 * forward / PEAK_FLOPS,
        "gift_over_sft_time": 1.25,
        # 16 bytes per trained parameter + bf16 logits and their gradient (activations come on top)
        "full_state_gib_lower_bound": (16 * params + 2 * 2 * seq * vocab) / 2**30,
    }


def stage_one(base: Path, out: Path, objective: str, steps: int, seq: int, dry: bool) -> dict:
    from stages.train.cold_start import main as cold_start

    precision = (
        ["--torch_dtype", "float32", "--bf16", "false"] if dry else ["--torch_dtype", "bfloat16", "--bf16", "true"]
    )
    _peak_reset()
    cold_start(
        [
            "--config",
            "configs/llada/s1k_full.yaml",
            "--model_name_or_path",
            str(base),
            "--output_dir",
            str(out),
            "--objective",
            objective,
            "--dataset",
            "synthetic:sudoku",
            "--synthetic_examples",
            str(4 * steps),
            "--max_length",
            str(seq),
            "--pad_to",
            "max_length",
            "--per_device_train_batch_size",
            "1",
            "--global_batch_size",
            "1",
            "--max_steps",
            str(steps),
            "--save_steps",
            str(steps),
            "--logging_steps",
            "1",
            "--disable_tqdm",
            "true",
            "--report_to",
            "none",
            *precision,
        ]
    )
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    times = sorted(row["step_time"] for row in log if "step_time" in row)
    return {"median_step_s": times[len(times) // 2], "steps": steps, "peak_gib": _peak_gib()}


def stage_two(start: Path, out: Path, dry: bool) -> dict:
    from stages.train.rl import main as rl

    precision = ["--torch_dtype", "float32", "--bf16", "false"] if dry else []
    sizes = ["--gen_length", "16", "--block_length", "8", "--steps", "8"] if dry else []
    _peak_reset()
    began = time.perf_counter()
    rl(
        [
            "--config",
            "configs/llada/grpo_sudoku.yaml",
            "--model",
            str(start),
            "--output_dir",
            str(out),
            "--dataset",
            "synthetic",
            "--per_device_train_batch_size",
            "6",
            "--global_batch_size",
            "6",
            "--num_iterations",
            "1",
            "--max_steps",
            "1",
            "--save_steps",
            "1",
            "--disable_tqdm",
            "true",
            "--report_to",
            "none",
            *precision,
            *sizes,
        ]
    )
    return {"step_s_incl_load": time.perf_counter() - began, "peak_gib": _peak_gib()}


def rollouts(start: Path, dry: bool) -> dict:
    from gift.checkpoint import load_model
    from gift.sampler import DiffusionSampler, SamplerConfig

    device = "cuda" if torch.cuda.is_available() else "cpu"
    loaded = load_model(str(start), dtype="float32" if dry else "bfloat16")
    model = loaded.model.to(device).eval()
    gen, block, batch = (16, 8, 2) if dry else (256, 32, 16)
    prompts = [loaded.tokenizer("Fill the grid: 1.3. .2.1", add_special_tokens=False)["input_ids"]] * batch
    out = {}
    for cache in ("none", "dual"):
        sampler = DiffusionSampler(
            model, loaded.adapter, SamplerConfig(gen_length=gen, block_length=block, steps=gen, kv_cache=cache)
        )
        sampler.generate(prompts[:1])  # warm-up
        if device == "cuda":
            torch.cuda.synchronize()
        began = time.perf_counter()
        sampler.generate(prompts)
        if device == "cuda":
            torch.cuda.synchronize()
        out[f"tokens_per_s_{cache}"] = batch * gen / (time.perf_counter() - began)
    return {**out, "batch": batch, "gen_length": gen, "steps": gen}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path, help="the JSON of results")
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--dry-run", action="store_true", help="tiny model on CPU: checks the program end to end")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--seq", type=int, default=4096, help="the recipes' max_length (lower it if it does not fit)")
    args = parser.parse_args(argv)
    dry = args.dry_run
    if not dry and not torch.cuda.is_available():
        sys.exit("gpu_smoke: no CUDA device (use --dry-run on CPU)")
    dims, seq, steps = (DRY_DIMS, 512, 2) if dry else (GPU_DIMS, args.seq, args.steps)
    base = layout.write_official_llada(
        args.workdir / "base", seed=0, dtype=torch.float32 if dry else torch.bfloat16, **dims
    )
    results = {
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "dry_run": dry,
        "torch": torch.__version__,
        "dims": dims,
        "seq": seq,
        "dtype": "float32" if dry else "bfloat16",
        "attention": "sdpa",
    }
    results["stage_one"] = {
        objective: stage_one(base, args.workdir / objective, objective, steps, seq, dry)
        for objective in ("gift", "sft")
    }
    one = results["stage_one"]
    one["gift_over_sft_time"] = one["gift"]["median_step_s"] / one["sft"]["median_step_s"]
    results["stage_two"] = stage_two(args.workdir / "gift", args.workdir / "rl", dry)
    results["rollouts"] = rollouts(args.workdir / "gift", dry)
    results["predicted"] = predictions(dims, seq)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
