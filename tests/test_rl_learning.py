"""Stage two learns on the embedded Sudoku: one d1 update raises the sampled reward (slow).

The whole-run curves are measured in docs/rl_comparison.md; this test pins the mechanism they rest on,
deterministically: from a mid-accuracy SFT checkpoint (about 65% of empty cells), one Adam-sized step
along d1's full-batch gradient raises the sampled reward of those prompts, and a random step of the same
size does not.
"""

import pytest

from benchmarks.bench_rl_direction import direction_study
from stages.cold_start import run_cold_start
from stages.cold_start_config import ColdStartConfig
from stages.recipes import load_recipe


@pytest.mark.slow
def test_one_d1_update_raises_the_sampled_sudoku_reward(tmp_path, base_dir):
    recipe = {**load_recipe("configs/embedded/sft_sudoku.yaml"), "model_name_or_path": str(base_dir),
              "output_dir": str(tmp_path / "sft"), "save_steps": 1000, "disable_tqdm": True, "report_to": "none"}
    checkpoint = run_cold_start(ColdStartConfig(**recipe))
    rows = direction_study(str(checkpoint), ["d1", "random"], [3e-4], prompts=32)
    base, d1, random = rows
    assert 0.4 < base["in_sample"] < 0.85  # mid-accuracy: room to rise
    assert d1["in_sample"] > base["in_sample"] + 0.01, rows
    assert d1["in_sample"] - base["in_sample"] > random["in_sample"] - base["in_sample"] + 0.01, rows
