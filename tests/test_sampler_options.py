"""The sampler's options are one type: `gift rl`'s recipe fields map onto `SamplerConfig` with the same meaning,
and its checks speak the recipe's option names."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from gift.sampler import SamplerConfig
from gift.sampler_options import sampler_options
from helpers import tiny_rl_config
from stages.train.rl_config import ROLLOUT_OPTIONS


def test_every_sampler_option_has_a_stage_two_field():
    assert set(ROLLOUT_OPTIONS) == set(sampler_options())


def test_recipe_fields_become_the_rollout_sampler(tmp_path):
    config = tiny_rl_config(tmp_path, "embedded:tiny", diffusion_steps=12, per_device_train_batch_size=8, sampler_threshold=0.9,
                            sampler_min_commit="schedule", sampler_eos_stop=True, sampler_lookahead=1, kv_cache="dual",
                            temperature=0.7)
    assert config.sampler_config() == SamplerConfig(gen_length=24, block_length=8, steps=12, temperature=0.7,
                                                    threshold=0.9, min_commit="schedule", eos_stop=True, lookahead=1,
                                                    kv_cache="dual")
    factor = tiny_rl_config(tmp_path, "embedded:tiny", diffusion_steps=12, per_device_train_batch_size=8, sampler_factor=1.0).sampler_config()
    assert asdict(factor)["factor"] == 1.0 and factor.threshold is None


@pytest.mark.parametrize("values, message", [
    (dict(sampler_min_commit="two"), "unknown sampler_min_commit 'two'"),
    (dict(sampler_lookahead=1), "sampler_lookahead=1 commits by sampler_threshold: set sampler_threshold"),
    (dict(sampler_threshold=0.9, sampler_factor=1.0), r"set sampler_threshold \(0.9\) or sampler_factor \(1.0\)"),
    (dict(remasking="best"), "unknown remasking 'best'"),
    (dict(kv_cache="all"), "unknown kv_cache 'all'"),
    (dict(top_p=0.9), "top_p 0.9: rollouts sample from the full distribution"),
])
def test_bad_rollout_settings_name_the_recipe_option(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        tiny_rl_config(tmp_path, "embedded:tiny", diffusion_steps=12, per_device_train_batch_size=8, **values)
