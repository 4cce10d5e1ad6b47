"""Two worker processes with one thread each vs one process with two threads, on the embedded model.

    python benchmarks/bench_pipeline_workers.py [--steps 60] [--output_dir /tmp/bench_workers]

Runs the same two stage-one jobs (the pipeline's unit of parallel work: independent arms/seeds) twice:
one after the other in one process with `torch.set_num_threads(2)`, then side by side in two spawned
processes with one thread each, and prints both wall times. Needs 2 idle cores to mean anything.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def _job(base: str, out: str, seed: int, steps: int, threads: int) -> float:
    import torch
    from transformers.utils import logging as hf_logging

    from stages.train.cold_start import run_cold_start
    from stages.train.cold_start_config import ColdStartConfig

    torch.set_num_threads(threads)
    hf_logging.set_verbosity_error()
    started = time.perf_counter()
    run_cold_start(
        ColdStartConfig(
            model_name_or_path=base,
            output_dir=out,
            objective="sft",
            max_steps=steps,
            save_steps=10_000,
            seed=seed,
            max_length=48,
            pad_to="longest",
            train_on_pad_tail=False,
            per_device_train_batch_size=64,
            learning_rate=1e-3,
            disable_tqdm=True,
            report_to=[],
            synthetic_examples=4096,
        )
    )
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--output_dir", default="/tmp/bench_workers")
    args = parser.parse_args(argv)
    from gift.embedded_model import init_model

    root = Path(args.output_dir)
    shutil.rmtree(root, ignore_errors=True)
    base = str(init_model(root / "base", "tiny", seed=0))
    spawn = multiprocessing.get_context("spawn")

    def fresh(name: str) -> str:
        return str(root / name)

    # Each mode runs in fresh spawned processes, so both pay the same start-up (imports, data).
    started = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=spawn) as pool:
        for seed in (0, 1):
            pool.submit(_job, base, fresh(f"serial{seed}"), seed, args.steps, 2).result()
    one_process = time.perf_counter() - started
    started = time.perf_counter()
    with ProcessPoolExecutor(2, mp_context=spawn) as pool:
        futures = [pool.submit(_job, base, fresh(f"parallel{seed}"), seed, args.steps, 1) for seed in (0, 1)]
        [f.result() for f in futures]
    two_processes = time.perf_counter() - started
    result = {
        "one_process_two_threads_s": round(one_process, 1),
        "two_processes_one_thread_s": round(two_processes, 1),
        "speedup": round(one_process / two_processes, 2),
    }
    print(result)
    return result


if __name__ == "__main__":
    main()
