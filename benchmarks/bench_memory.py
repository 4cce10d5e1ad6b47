"""Peak memory of GIFT's probe entropy at LLaDA's vocabulary: chunked vs one fp32 log_softmax over everything.

    .venv/bin/python benchmarks/bench_memory.py                       # vocab 126,464 x 1,024 positions, CPU
    .venv/bin/python benchmarks/bench_memory.py --seq 4096 --no-step  # the paper's max length, entropy only

What is measured, on CPU (RSS is what torch's CPU allocator takes from the OS; `tracemalloc` does not see
torch). Each variant runs in its own fresh subprocess, single-threaded:
1. allocate the inputs (logits in the model dtype, or the tiny model and its batch) and touch them;
2. read the resident set (VmRSS) as the baseline and reset the high-water mark (`/proc/self/clear_refs`,
   falling back to `ru_maxrss`, which then also counts the inputs: the report says which was used);
3. run the computation once; peak = VmHWM. Reported: peak - baseline, i.e. the memory the computation
   itself needs on top of its inputs.

Variants:
- `entropy-unchunked`: `log_softmax(logits.float())` over all positions, then `-(p * logp).sum(-1)`;
- `entropy-chunked-C`: `gift.objective.chunked_entropy(logits, positions, C)` (the probe's code path);
- `step-*` (unless --no-step): one whole GIFT step (probe + masked forward + backward, live beta) of a tiny
  bidirectional Llama with the same vocabulary (hidden 64, 2 layers, fp32), with the probe's entropy
  chunked or replaced by the unchunked computation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _reset_peak() -> str:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return "VmHWM"
    except OSError:
        return "ru_maxrss"


def _peak_kb(method: str) -> int:
    return _status_kb("VmHWM") if method == "VmHWM" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _unchunked_entropy(logits, positions, chunk_size=None, head=None):
    """Reference: one fp32 log_softmax over every position (what chunking avoids)."""
    import torch

    if head is not None:  # the probe hands over hidden states (gift.probe.split_head)
        logits = head(logits)
    logp = torch.log_softmax(logits.float(), dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return torch.where(positions, entropy.clamp_min(0), torch.zeros_like(entropy))


def _run_entropy(args) -> dict:
    import torch

    from gift.objective import chunked_entropy

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(1, args.seq, args.vocab, generator=g).to(getattr(torch, args.dtype))
    positions = torch.zeros(1, args.seq, dtype=torch.bool)
    positions[:, args.seq // 8 :] = True  # a prompt of 1/8, the rest answer
    baseline, method = _status_kb("VmRSS"), _reset_peak()
    start = time.perf_counter()
    if args.variant == "entropy-unchunked":
        out = _unchunked_entropy(logits, positions)
    else:
        out = chunked_entropy(logits, positions, int(args.variant.rsplit("-", 1)[1]))
    seconds = time.perf_counter() - start
    return {
        "peak_mb": (_peak_kb(method) - baseline) / 1024,
        "seconds": seconds,
        "method": method,
        "inputs_mb": logits.numel() * logits.element_size() / 2**20,
        "checksum": float(out.sum()),
    }


def _run_step(args) -> dict:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    import gift.probe
    from gift.adapters import ModelAdapter
    from gift.loss import diffusion_loss
    from gift.schedules import GiftSchedule

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=args.vocab,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        intermediate_size=128,
        max_position_embeddings=args.seq,
        tie_word_embeddings=True,
        is_causal=False,
    )
    model = LlamaForCausalLM(config)
    mask_id = args.vocab - 1
    adapter = ModelAdapter("embedded", mask_token_id=mask_id, eos_token_id=0, pad_token_id=0)
    g = torch.Generator().manual_seed(0)
    input_ids = torch.randint(1, args.vocab - 1, (1, args.seq), generator=g)
    answer = torch.zeros(1, args.seq, dtype=torch.bool)
    answer[:, args.seq // 8 :] = True
    batch = {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "answer_mask": answer,
        "pad_tail_mask": torch.zeros_like(answer),
        "index": torch.zeros(1, dtype=torch.long),
    }
    chunk = 0 if args.variant == "step-unchunked" else int(args.variant.rsplit("-", 1)[1])
    if chunk == 0:
        gift.probe.chunked_entropy = _unchunked_entropy  # the probe's entropy, computed in one piece
    schedule = GiftSchedule("live", "entropy", "sequence", 1e-3, "sft", chunk or args.seq)
    model.train()
    baseline, method = _status_kb("VmRSS"), _reset_peak()
    start = time.perf_counter()
    out = diffusion_loss(model, adapter, batch, schedule, generator=torch.Generator().manual_seed(1))
    out.loss.backward()
    seconds = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    return {
        "peak_mb": (_peak_kb(method) - baseline) / 1024,
        "seconds": seconds,
        "method": method,
        "inputs_mb": params * 4 / 2**20,
        "checksum": float(out.loss),
    }


def _child(args) -> None:
    import torch

    torch.set_num_threads(1)
    result = _run_step(args) if args.variant.startswith("step-") else _run_entropy(args)
    print(json.dumps({"variant": args.variant, **result}))


def _spawn(variant: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--variant",
        variant,
        "--vocab",
        str(args.vocab),
        "--seq",
        str(args.seq),
        "--dtype",
        args.dtype,
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
    }
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _table(title: str, rows: list[dict], reference: dict) -> str:
    lines = [title, "| variant | extra peak RSS (MB) | vs unchunked | time (s) |", "|---|---:|---:|---:|"]
    for r in rows:
        ratio = r["peak_mb"] / reference["peak_mb"] if reference["peak_mb"] > 0 else float("nan")
        lines.append(f"| {r['variant']} | {r['peak_mb']:.0f} | {ratio:.2f} | {r['seconds']:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vocab", type=int, default=126_464)
    parser.add_argument("--seq", type=int, default=1024)
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"], help="logits dtype (entropy)")
    parser.add_argument("--chunks", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--no-step", action="store_true", help="skip the whole-step measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--variant", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args)

    entropy = [_spawn("entropy-unchunked", args)] + [_spawn(f"entropy-chunked-{c}", args) for c in args.chunks]
    print(
        f"vocab {args.vocab:,}, {args.seq:,} positions ({args.seq - args.seq // 8:,} answer), batch 1, "
        f"CPU, 1 thread; peak measured with {entropy[0]['method']}"
    )
    print()
    print(
        _table(
            f"Probe entropy alone ({args.dtype} logits of {entropy[0]['inputs_mb']:.0f} MB as input):",
            entropy,
            entropy[0],
        )
    )
    if not args.no_step:
        steps = [_spawn("step-unchunked", args)] + [_spawn(f"step-chunked-{c}", args) for c in args.chunks]
        print()
        print(
            _table(
                f"One GIFT step (probe + forward + backward), tiny fp32 model, hidden 64, 2 layers "
                f"({steps[0]['inputs_mb']:.0f} MB of weights):",
                steps,
                steps[0],
            )
        )


if __name__ == "__main__":
    main()
