#!/usr/bin/env bash
# The GPU check, one command, one JSON: stage-one step time and peak memory of GIFT vs SFT (full parameters,
# bf16 + sdpa), a stage-two step, rollout tokens/s, on a random ~1.1B-parameter LLaDA-architecture model at the
# recipes' sequence length (4,096), with docs/scaling.md's predictions beside them (scripts/gpu_smoke.py).
#
#   scripts/gpu_smoke.sh [OUT.json]              # on a CUDA machine (default OUT: docs/results/gpu_smoke.json)
#   SEQ=2048 scripts/gpu_smoke.sh OUT.json       # a shorter sequence if 4,096 does not fit
#   scripts/gpu_smoke.sh --dry-run OUT.json      # anywhere: the same program on a tiny model on CPU (the test
#                                                # suite runs this: tests/test_gpu_smoke.py)
# Environment: PYTHON (default .venv/bin/python, else python3), STEPS (default 5), SEQ (default 4096),
# WORKDIR (default a fresh temp dir). Exit status 2: no CUDA device (and no --dry-run).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
DRY=()
if [[ "${1:-}" == "--dry-run" || "${1:-}" == "--check" ]]; then
    DRY=(--dry-run)
    shift
fi
OUT=${1:-docs/results/gpu_smoke.json}
WORKDIR=${WORKDIR:-$(mktemp -d -t gift-gpu-smoke-XXXX)}

if [[ ${#DRY[@]} -eq 0 ]] && ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_smoke: no CUDA device visible to $PYTHON; use --dry-run on CPU." >&2
    exit 2
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" scripts/gpu_smoke.py --output "$OUT" --workdir "$WORKDIR" --steps "${STEPS:-5}" --seq "${SEQ:-4096}" \
    "${DRY[@]}"
echo "gpu_smoke: wrote $OUT"
