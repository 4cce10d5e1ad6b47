"""Does `torch.compile` buy seeds on CPU? One SFT step of the embedded model, eager vs compiled, one thread.

    OMP_NUM_THREADS=1 python benchmarks/bench_compile.py --steps 20

Two copies of the same model (seed 0) take the same batches, their steps interleaved so a busy machine slows
both alike; the line printed gives each one's median step, the compile time (first compiled step) and how far
the compiled run's loss and weights drift from the eager run's after the steps (float noise is ~1e-6 relative).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> dict:
    import torch
    from bench_cold_start import _random_batch, _setup

    from gift.loss import diffusion_loss
    from gift.schedules import UniformSchedule

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model, adapter, vocab, batch_size, length, answer, tail = _setup("tiny")
    compiled_model = copy.deepcopy(model)
    compiled = torch.compile(compiled_model)
    runs = {
        "eager": (model, torch.optim.AdamW(model.parameters(), lr=1e-3)),
        "compiled": (compiled, torch.optim.AdamW(compiled_model.parameters(), lr=1e-3)),
    }
    times = {name: [] for name in runs}
    losses = {name: [] for name in runs}
    first_compiled = None
    for step in range(args.warmup + args.steps):
        g = torch.Generator().manual_seed(step)
        batch = _random_batch(g, vocab, batch_size, length, answer, tail)
        for name, (net, optimizer) in runs.items():
            torch.manual_seed(1000 + step)  # the same masks for both
            started = time.perf_counter()
            out = diffusion_loss(net, adapter, batch, UniformSchedule())
            optimizer.zero_grad()
            out.loss.backward()
            optimizer.step()
            seconds = time.perf_counter() - started
            losses[name].append(out.loss.item())
            if step == 0 and name == "compiled":
                first_compiled = seconds
            if step >= args.warmup:
                times[name].append(seconds)
    drift = max((a - b).abs().max().item() for a, b in zip(model.parameters(), compiled_model.parameters()))
    result = {
        "eager_median_s": statistics.median(times["eager"]),
        "compiled_median_s": statistics.median(times["compiled"]),
        "speedup": statistics.median(times["eager"]) / statistics.median(times["compiled"]),
        "first_compiled_step_s": first_compiled,
        "max_loss_difference": max(abs(a - b) for a, b in zip(losses["eager"], losses["compiled"])),
        "max_weight_difference": drift,
        "steps": args.steps,
        "torch": torch.__version__,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
