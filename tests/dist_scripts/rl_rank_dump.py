"""Run stage two under a real launcher and dump what each rank ended with (for tests/test_distributed.py).

    torchrun --nproc_per_node 2 tests/dist_scripts/rl_rank_dump.py DUMP_DIR \
        --config configs/embedded/grpo_sudoku.yaml --model CKPT --output_dir RUN --max_steps 2

Every rank trains through `gift rl`'s own path and writes `DUMP_DIR/rank{R}.json` with the sha256 of
every parameter, the number of prompts this rank generated for and the number of rewards gathered.
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

import stages.train.rl as rl  # noqa: E402

SEEN: dict[str, list[int]] = {"local_prompts": [], "gathered_rewards": [], "loss_rows": []}
_generate = rl.DiffuGRPOTrainer._generate_and_score_completions
_rewards = rl.DiffuGRPOTrainer._calculate_rewards
_loss = rl.DiffuGRPOTrainer._compute_loss


def _record_generate(self, inputs):
    SEEN["local_prompts"].append(len(inputs))
    return _generate(self, inputs)


def _record_rewards(self, *args, **kwargs):
    out = _rewards(self, *args, **kwargs)
    SEEN["gathered_rewards"].append(int(out.shape[0]))
    return out


def _record_loss(self, model, inputs):
    SEEN["loss_rows"].append(int(inputs["advantages"].shape[0]))
    return _loss(self, model, inputs)


class _DumpAtEnd(TrainerCallback):
    def __init__(self, dump_dir: Path):
        self.dump_dir = dump_dir

    def on_train_end(self, args, state, control, model=None, **kwargs):
        rank = int(os.environ.get("RANK", "0"))
        params = {
            name: hashlib.sha256(p.detach().float().contiguous().cpu().numpy().tobytes()).hexdigest()
            for name, p in model.named_parameters()
        }
        self.dump_dir.mkdir(parents=True, exist_ok=True)
        (self.dump_dir / f"rank{rank}.json").write_text(
            json.dumps(
                {
                    "rank": rank,
                    "world_size": args.world_size,
                    "global_step": state.global_step,
                    "params": params,
                    **SEEN,
                }
            )
        )


def main(argv: list[str]) -> None:
    dump_dir, rest = Path(argv[0]), argv[1:]
    rl.DiffuGRPOTrainer._generate_and_score_completions = _record_generate
    rl.DiffuGRPOTrainer._calculate_rewards = _record_rewards
    rl.DiffuGRPOTrainer._compute_loss = _record_loss
    (config,) = rl.make_parser().parse_args_and_config(rest)
    rl.run_rl(config, callbacks=[_DumpAtEnd(dump_dir)])


if __name__ == "__main__":
    main(sys.argv[1:])
