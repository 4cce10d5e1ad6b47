"""The sampler's options are one type: `gift rl`'s recipe fields are `SamplerConfig`'s options under the same
names, with the sampler's help, and its checks speak those names."""

from __future__ import annotations

from dataclasses import asdict, fields

import pytest
from helpers import tiny_rl_config

from gift.sampler import SamplerConfig
from gift.sampler_options import HELP, sampler_options
from stages.train.rl_config import rl_config_class


def test_every_sampler_option_is_a_stage_two_field_of_the_same_name_and_help():
    declared = {f.name: f for f in fields(rl_config_class())}
    for name in sampler_options():
        assert name in declared, name
        if name != "temperature":  # trl's field, with trl's help
            assert declared[name].metadata["help"].endswith(HELP[name]), name
    assert declared["block_length"].default == SamplerConfig.block_length  # the default is written once


def test_recipe_fields_become_the_rollout_sampler(tmp_path):
    config = tiny_rl_config(
        tmp_path,
        "embedded:tiny",
        steps=12,
        per_device_train_batch_size=8,
        threshold=0.9,
        min_commit="schedule",
        eos_stop=True,
        lookahead=1,
        kv_cache="dual",
        temperature=0.7,
    )
    assert config.sampler_config() == SamplerConfig(
        gen_length=24,
        block_length=8,
        steps=12,
        temperature=0.7,
        threshold=0.9,
        min_commit="schedule",
        eos_stop=True,
        lookahead=1,
        kv_cache="dual",
    )
    factor = tiny_rl_config(
        tmp_path, "embedded:tiny", steps=12, per_device_train_batch_size=8, factor=1.0
    ).sampler_config()
    assert asdict(factor)["factor"] == 1.0 and factor.threshold is None


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(min_commit="two"), "unknown min_commit 'two'"),
        (dict(lookahead=1), "lookahead=1 commits by threshold: set threshold"),
        (dict(threshold=0.9, factor=1.0), r"set threshold \(0.9\) or factor \(1.0\)"),
        (dict(remasking="best"), "unknown remasking 'best'"),
        (dict(kv_cache="all"), "unknown kv_cache 'all'"),
        (dict(top_p=0.9), "top_p 0.9: rollouts sample from the full distribution"),
    ],
)
def test_bad_rollout_settings_name_the_recipe_option(tmp_path, values, message):
    with pytest.raises(ValueError, match=message):
        tiny_rl_config(tmp_path, "embedded:tiny", steps=12, per_device_train_batch_size=8, **values)
