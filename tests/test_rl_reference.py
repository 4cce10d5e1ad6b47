"""The KL reference of stage two is the starting model, not the policy being trained."""

import json

import torch

import stages.train.rl as rl
from gift.checkpoint import load_model
from helpers import tiny_rl_config


def test_reference_runs_the_starting_weights_while_the_policy_moves(tmp_path, base_dir, monkeypatch):
    # trl patches `model.forward` in its __init__ with a closure over the model's bound forward; a reference
    # deep-copied after that ran the trained weights, so the "KL to the reference" was a KL to the policy
    # that generated the batch (exactly 0 at every batch's first iteration).
    start = load_model(str(base_dir)).model.eval()
    probe = torch.randint(5, 20, (2, 12), generator=torch.Generator().manual_seed(0))
    seen = []
    real = rl.DiffuGRPOTrainer._reference_logps

    def record(self, batch):
        with torch.no_grad():
            logits = {"ref": self.ref_model(input_ids=probe).logits, "start": start(input_ids=probe).logits,
                      "policy": self.accelerator.unwrap_model(self.model)(input_ids=probe).logits}
        seen.append({name: (value - logits["start"]).abs().max().item() for name, value in logits.items()})
        return real(self, batch)

    monkeypatch.setattr(rl.DiffuGRPOTrainer, "_reference_logps", record)
    rl.run_rl(tiny_rl_config(tmp_path / "rl", base_dir, max_prompts=32, diffusion_steps=12, per_device_train_batch_size=8, beta=0.04,
                             learning_rate=1e-2, max_steps=6, save_steps=6))
    metrics = [line for line in (tmp_path / "rl" / "metrics.jsonl").read_text().splitlines()]
    assert len(seen) == 3  # one reference pass per generation batch (6 steps, mu 2)
    assert all(s["ref"] == 0.0 for s in seen)  # the reference is the starting model, bit for bit
    assert seen[-1]["policy"] > 1e-3  # while the policy has moved away from it
    kls = [json.loads(line)["kl"] for line in metrics]
    assert kls[2] > 0.0 and kls[4] > 0.0  # first iteration of a later batch: the policy differs from the reference
