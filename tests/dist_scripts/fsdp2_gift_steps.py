"""FSDP2 (`torch.distributed.fsdp.fully_shard`, per decoder layer then the root) on a native LLaDA / Dream, on CPU
with gloo: GIFT steps (live probe on the sharded model, masked-diffusion loss, AdamW) against the same steps
of an unsharded copy that sees both ranks' micro-batches (what DDP computes), for tests/test_sharded.py.

    torchrun --nproc_per_node 2 tests/dist_scripts/fsdp2_gift_steps.py MODEL_DIR OUT.json

(accelerate 1.15 enables its FSDP plugin only for GPU-type launches; on CPU `accelerate launch` with
configs/accelerate/fsdp.yaml runs plain data parallel, so the sharding itself is driven here.)
"""

from __future__ import annotations

import copy
import json
import os
import sys

import torch
import torch.distributed as dist

torch.set_num_threads(1)

from torch.distributed.fsdp import fully_shard  # noqa: E402

from gift.checkpoint import load_model  # noqa: E402
from gift.loss import diffusion_loss  # noqa: E402
from gift.schedules import GiftSchedule  # noqa: E402

STEPS, LR = 2, 1e-3


def micro_batch(rank: int, step: int) -> dict:
    g = torch.Generator().manual_seed(100 * step + rank)
    ids = torch.randint(5, 100, (1, 20), generator=g)
    answer = torch.zeros(1, 20, dtype=torch.bool)
    answer[:, 6:] = True
    return {
        "input_ids": ids,
        "attention_mask": torch.ones(1, 20, dtype=torch.long),
        "answer_mask": answer,
        "pad_tail_mask": torch.zeros(1, 20, dtype=torch.bool),
        "index": torch.tensor([rank]),
    }


def loss_of(model, adapter, rank: int, step: int) -> torch.Tensor:
    return diffusion_loss(
        model,
        adapter,
        micro_batch(rank, step),
        GiftSchedule(),
        generator=torch.Generator().manual_seed(7 * step + rank),
    ).loss


def main(model_dir: str, out: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    loaded = load_model(model_dir, dtype="float32")
    reference = copy.deepcopy(loaded.model)
    sharded = loaded.model
    for layer in sharded.model.layers:
        fully_shard(layer)
    fully_shard(sharded)
    optimizers = [torch.optim.AdamW(m.parameters(), lr=LR) for m in (sharded, reference)]
    losses = []
    for step in range(STEPS):
        loss = loss_of(sharded, loaded.adapter, rank, step)  # FSDP2 averages gradients over the ranks
        loss.backward()
        optimizers[0].step()
        optimizers[0].zero_grad()
        both = [loss_of(reference, loaded.adapter, r, step) for r in range(world)]
        (sum(both) / world).backward()
        optimizers[1].step()
        optimizers[1].zero_grad()
        losses.append([float(loss), float(both[rank])])
    full = {name: p.full_tensor() for name, p in sharded.state_dict().items()}  # all-gathers every shard
    expected = reference.state_dict()
    start = load_model(model_dir, dtype="float32").model.state_dict()
    local_shapes = {name: tuple(p.to_local().shape) for name, p in sharded.state_dict().items()}
    record = {
        "rank": rank,
        "losses": losses,
        "max_weight_diff": max((full[k] - expected[k]).abs().max().item() for k in full),
        "max_change": max((full[k] - start[k]).abs().max().item() for k in full),
        "sharded": any(local_shapes[k] != tuple(full[k].shape) for k in full),
    }
    with open(f"{out}.rank{rank}", "w") as handle:
        json.dump(record, handle)
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main(sys.argv[1], sys.argv[2])
