"""Run stage one under a real launcher and dump what each rank ended with (for tests/test_distributed.py).

    torchrun --nproc_per_node 2 tests/dist_scripts/cold_start_rank_dump.py DUMP_DIR \
        --config configs/embedded/gift_sudoku.yaml --model_name_or_path DIR --output_dir RUN --max_steps 3

Every rank trains (the ordinary `gift cold-start` path: `make_parser` + `run_cold_start`) and writes
`DUMP_DIR/rank{R}.json` with
- `params`: name -> sha256 of the parameter's bytes after the last step, plus `sum` per name;
- `batches`: the example indices this rank's collator produced, one list per micro-batch;
- `world_size`, `per_device`, `accumulation`: as the trainer saw them.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import torch

torch.set_num_threads(1)

from transformers import TrainerCallback  # noqa: E402

import stages.train.cold_start as cold_start  # noqa: E402


class _RecordingCollator(cold_start.DiffusionCollator):
    """The project's collator, recording the example indices of each micro-batch it builds."""

    seen: list[list[int]] = []

    def __call__(self, features):
        batch = super().__call__(features)
        _RecordingCollator.seen.append([int(i) for i in batch["index"]])
        return batch


class _DumpAtEnd(TrainerCallback):
    def __init__(self, dump_dir: Path):
        self.dump_dir = dump_dir

    def on_train_end(self, args, state, control, model=None, **kwargs):
        rank = int(os.environ.get("RANK", "0"))
        params = {}
        for name, p in model.named_parameters():
            data = p.detach().float().contiguous().cpu()
            params[name] = {
                "sha256": hashlib.sha256(data.numpy().tobytes()).hexdigest(),
                "sum": float(data.double().sum()),
            }
        record = {
            "rank": rank,
            "world_size": args.world_size,
            "per_device": args.per_device_train_batch_size,
            "accumulation": args.gradient_accumulation_steps,
            "global_step": state.global_step,
            "params": params,
            "batches": _RecordingCollator.seen,
        }
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        (self.dump_dir / f"rank{rank}.json").write_text(json.dumps(record))


def main(argv: list[str]) -> None:
    dump_dir, rest = Path(argv[0]), argv[1:]
    cold_start.DiffusionCollator = _RecordingCollator  # run_cold_start builds its collator by this name
    (config,) = cold_start.make_parser().parse_args_and_config(rest)
    final = cold_start.run_cold_start(config, callbacks=[_DumpAtEnd(dump_dir)])
    print(f"rank {os.environ.get('RANK', '0')}: checkpoint {final}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
