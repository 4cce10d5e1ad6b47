#!/usr/bin/env bash
# GPU smoke test: a few bf16 steps of stage one (GIFT, live beta) and, when stages/train/rl.py exists, of stage
# two, on a mid-size embedded model; prints throughput and peak GPU memory (torch.cuda.max_memory_allocated).
#
#   scripts/gpu_smoke.sh [WORKDIR]          # on a CUDA machine; WORKDIR defaults to a fresh temp dir
#   scripts/gpu_smoke.sh --check            # anywhere: only checks that the Python parts import
#   PRESET=small STEPS=5 scripts/gpu_smoke.sh
#   FAMILY=llada scripts/gpu_smoke.sh       # the native LLaDA (or FAMILY=dream) path through the LLaDA/Dream
#                                           # recipes: a random mid-size checkpoint in the official hub layout,
#   FAMILY=llada MODEL=GSAI-ML/LLaDA-8B-Instruct scripts/gpu_smoke.sh   # or the real one (hub download)
#
# Environment: PYTHON (default .venv/bin/python, else python3), PRESET (mid|small|tiny, default mid),
# STEPS (default 10), BATCH (per-device batch, default 64), FAMILY (embedded|llada|dream, default embedded),
# MODEL (with FAMILY: an official-layout checkpoint instead of the random one). Exit status 2: no CUDA device.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
PRESET=${PRESET:-mid}
STEPS=${STEPS:-10}
BATCH=${BATCH:-64}
FAMILY=${FAMILY:-embedded}
MODEL=${MODEL:-}

CHECK=0
if [[ "${1:-}" == "--check" ]]; then
    CHECK=1
    shift
fi

# The Python side: one program, `cold_start` or `rl` mode; SMOKE_CHECK=1 stops after the imports.
read -r -d '' SMOKE_PY <<'PYEOF' || true
import json, os, sys, time
from pathlib import Path

import torch

from stages.train.cold_start import main as cold_start_main

mode, out = sys.argv[1], Path(sys.argv[2])
rl_main = None
if Path("stages/train/rl.py").is_file():
    from stages.train.rl import main as rl_main
if os.environ.get("SMOKE_CHECK") == "1":
    print(f"imports ok ({mode}; stage two {'present' if rl_main else 'absent'})")
    sys.exit(0)
if not torch.cuda.is_available():
    sys.exit("no CUDA device")

steps, batch = os.environ["STEPS"], os.environ["BATCH"]
common = ["--max_steps", steps, "--bf16", "true", "--logging_steps", "1", "--save_steps", "100000",
          "--disable_tqdm", "true", "--report_to", "none", "--seed", "0"]
torch.cuda.reset_peak_memory_stats()
start = time.perf_counter()
family = os.environ.get("FAMILY", "embedded")
if family != "embedded":  # the LLaDA/Dream recipes on the native implementation, shrunk by overrides only
    base = os.environ.get("MODEL") or str(out / "base")
    sizes = ["--dataset", "synthetic:sudoku" if mode == "cold_start" else "synthetic", "--bf16", "true",
             "--max_steps", steps, "--save_steps", "100000", "--logging_steps", "1", "--disable_tqdm", "true"]
    if mode == "cold_start":
        from stages.train.cold_start import main as run_stage
        argv = ["--config", f"configs/{family}/s1k_lora.yaml", "--model_name_or_path", base, "--synthetic_examples",
                str(16 * int(steps)), "--max_length", "1024", "--pad_to", "max_length", "--output_dir", str(out / "stage1")]
    else:
        run_stage = rl_main
        argv = ["--config", "configs/llada/grpo_sudoku.yaml", "--model", str(out / "stage1"),
                "--output_dir", str(out / "stage2")]
    run_stage([*argv, *sizes])
    seconds = time.perf_counter() - start
    print(f"{family} {mode} (native, bf16) on {torch.cuda.get_device_name()}: {steps} steps in {seconds:.1f}s; "
          f"peak GPU memory allocated {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    sys.exit(0)
if mode == "cold_start":
    run = out / "stage1"
    cold_start_main(["--config", "configs/embedded/gift_sudoku.yaml", "--model_name_or_path", str(out / "base"),
                     "--output_dir", str(run), "--objective", "gift", "--beta_source", "live",
                     "--synthetic_examples", str(max(int(steps) * int(batch), 256)),
                     "--per_device_train_batch_size", batch, *common])
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    summary = log[-1]
    examples = float(summary.get("train_samples_per_second", float("nan")))
    step_times = [row["step_time"] for row in log if "step_time" in row][1:]  # first step warms up
    label = f"stage one (GIFT, live beta, bf16, batch {batch})"
    extra = f", median step {sorted(step_times)[len(step_times) // 2]:.3f}s" if step_times else ""
else:
    if rl_main is None:
        print("stage two: stages/train/rl.py not present, skipped")
        sys.exit(0)
    run = out / "stage2"
    rl_main(["--config", "configs/embedded/grpo_sudoku.yaml", "--model", str(out / "stage1" / "final"),
             "--output_dir", str(run), *common])
    examples, extra = float("nan"), ""
    label = "stage two (diffu-GRPO, bf16)"
seconds = time.perf_counter() - start
peak = torch.cuda.max_memory_allocated() / 2**30
rate = f"; {examples:.1f} samples/s in the loop" if examples == examples else ""
print(f"{label} on {torch.cuda.get_device_name()}: {steps} steps in {seconds:.1f}s "
      f"({float(steps) / seconds:.2f} steps/s incl. start-up{rate}{extra}); peak GPU memory allocated {peak:.2f} GiB")
PYEOF

export STEPS BATCH
if [[ $CHECK -eq 1 ]]; then
    SMOKE_CHECK=1 CUDA_VISIBLE_DEVICES= "$PYTHON" -c "$SMOKE_PY" cold_start /tmp
    exit 0
fi

if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_smoke: no CUDA device visible to $PYTHON (torch $("$PYTHON" -c 'import torch; print(torch.__version__)'))." >&2
    echo "gpu_smoke: run it on a GPU machine with a CUDA build of torch; on CPU use the test suite instead." >&2
    exit 2
fi

WORK=${1:-$(mktemp -d -t gift-gpu-smoke-XXXX)}
mkdir -p "$WORK"
echo "gpu_smoke: work dir $WORK, preset $PRESET, $STEPS steps, per-device batch $BATCH"
export FAMILY MODEL
if [[ "$FAMILY" == "embedded" ]]; then
    "$PYTHON" -m stages.cli init-model --preset "$PRESET" --output_dir "$WORK/base"
elif [[ -z "$MODEL" ]]; then  # a random 24-layer model of the family's widths, written in the official layout
    "$PYTHON" -c "import sys; sys.path.insert(0, 'tests'); from pathlib import Path; import official_layout as o
dims = dict(d_model=2048, n_heads=16, n_kv_heads=16, n_layers=24, mlp_hidden_size=6144, vocab_size=126464) \
    if sys.argv[1] == 'llada' else dict(hidden_size=1792, num_attention_heads=14, num_key_value_heads=2, \
    num_hidden_layers=24, intermediate_size=9472, vocab_size=152064)
getattr(o, f'write_official_{sys.argv[1]}')(Path(sys.argv[2]), **dims)" "$FAMILY" "$WORK/base"
fi
"$PYTHON" -c "$SMOKE_PY" cold_start "$WORK"
"$PYTHON" -c "$SMOKE_PY" rl "$WORK"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv 2>/dev/null || true
echo "gpu_smoke: done"
