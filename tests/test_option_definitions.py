"""Each `gift rl` option is defined once and every layer takes that definition: trl's fields keep trl's help,
every option has a help line, and an estimator registered after the config module was imported (the
documented way: one module, one `register` call) gets its own options as fields, flags, help and range checks."""

from __future__ import annotations

import dataclasses

import pytest
from helpers import tiny_rl_config
from trl import GRPOConfig

from gift.estimators import ESTIMATORS
from stages.train.rl import make_parser
from stages.train.rl_config import rl_config_class


def _help_by_flag(parser) -> dict[str, str | None]:
    return {action.option_strings[0]: action.help for action in parser._actions if action.option_strings}


def test_every_gift_rl_option_has_a_help_line():
    helps = _help_by_flag(make_parser())
    for flag in (
        "--num_generations",
        "--learning_rate",
        "--gen_length",
        "--block_length",
        "--steps",
        "--remasking",
        "--threshold",
        "--use_lora",
        "--lora_r",
        "--beta",
        "--epsilon",
        "--loss_type",
        "--num_t",
    ):
        assert helps.get(flag), flag
    assert [flag for flag, text in helps.items() if not text and flag not in ("-h", "--config")] == []


def test_trl_fields_keep_trl_help_with_d1_defaults():
    ours = {f.name: f for f in dataclasses.fields(rl_config_class())}
    trl = {f.name: f for f in dataclasses.fields(GRPOConfig)}
    for name in ("num_generations", "learning_rate", "temperature", "num_iterations", "scale_rewards", "save_steps"):
        assert ours[name].metadata["help"] == trl[name].metadata["help"], name
    assert (ours["num_generations"].default, ours["learning_rate"].default) == (6, 3e-6)
    assert ours["beta"].metadata["help"].startswith(trl["beta"].metadata["help"])  # then each estimator's default
    assert ours["beta"].default is None  # unset: the chosen estimator's


def test_an_estimator_registered_later_gets_its_own_option(tmp_path):
    import toy_estimator  # noqa: F401  (registers "toy", whose `toy_baseline` no built-in estimator has)

    fields = {f.name: f for f in dataclasses.fields(rl_config_class())}
    assert "constant taken off every advantage" in fields["toy_baseline"].metadata["help"]
    assert "--toy_baseline" in _help_by_flag(make_parser())
    config = tiny_rl_config(
        tmp_path, "embedded:tiny", rl_algorithm="toy", toy_baseline=0.5, per_device_train_batch_size=8, steps=12
    )
    assert config.toy_baseline == 0.5
    (parsed,) = make_parser().parse_args_and_config(
        [
            "--output_dir",
            str(tmp_path / "p"),
            "--rl_algorithm",
            "toy",
            "--toy_baseline",
            "0.25",
            "--per_device_train_batch_size",
            "6",
            "--gen_length",
            "24",
            "--block_length",
            "8",
            "--steps",
            "12",
        ]
    )
    assert parsed.toy_baseline == 0.25
    with pytest.raises(ValueError, match=r"--toy_baseline -1.0: must be >= 0"):
        tiny_rl_config(
            tmp_path, "embedded:tiny", rl_algorithm="toy", toy_baseline=-1.0, per_device_train_batch_size=8, steps=12
        )
    with pytest.raises(ValueError, match=r"--toy_baseline is an option of toy, not of rl_algorithm d1"):
        tiny_rl_config(tmp_path, "embedded:tiny", toy_baseline=0.5, per_device_train_batch_size=8, steps=12)


def test_a_config_pickles_as_the_class_with_the_registered_options(tmp_path):
    import pickle

    config = tiny_rl_config(tmp_path, "embedded:tiny", per_device_train_batch_size=8, steps=12)
    again = pickle.loads(pickle.dumps(config))  # trl saves training_args.bin this way
    assert type(again) is type(config) and again.to_dict() == config.to_dict()


def test_an_estimator_option_that_claims_to_be_a_trainer_field_is_refused():
    from dataclasses import dataclass

    from gift.estimators import D1, register
    from gift.estimators.base import option

    @dataclass
    class Settings:
        toy_weight: float = option(1.0, "a weight", trainer=True)

    class Bad(D1):
        name = "bad_trainer_claim"
        settings_type = Settings

    with pytest.raises(TypeError, match="declared trainer=True, but the trainer's own fields are beta, epsilon"):
        register(Bad)
    assert "bad_trainer_claim" not in ESTIMATORS


def test_reading_a_config_does_not_import_the_training_package():
    from tests.test_import_graph import import_graph

    graph = import_graph()
    assert not {m for m in graph["stages.config_args"] if m.startswith("stages.train")}  # recipes: stages.recipes
    assert not {m for m in graph["stages.recipes"] if m.startswith("stages.train")}


def test_an_estimators_rules_across_options_are_checked_when_the_config_is_built(tmp_path):
    import toy_estimator  # noqa: F401  (its `toy_baseline` declares `toy_baseline <= toy_cap` with the field)

    with pytest.raises(ValueError, match=r"^toy_baseline \(0.5\) must not exceed toy_cap \(0.25\)$"):
        tiny_rl_config(
            tmp_path,
            "embedded:tiny",
            rl_algorithm="toy",
            toy_baseline=0.5,
            toy_cap=0.25,
            per_device_train_batch_size=8,
            steps=12,
        )
    # The choices its settings declare, and the capabilities its class declares, at the same boundary.
    with pytest.raises(ValueError, match=r"^unknown wd1_reduction 'x'; choose one of group_sum, row_mean$"):
        tiny_rl_config(
            tmp_path, "embedded:tiny", rl_algorithm="wd1", wd1_reduction="x", per_device_train_batch_size=8, steps=12
        )
    with pytest.raises(ValueError, match=r"^rl_algorithm wd1 has no KL term; set beta: 0 \(got 0.1\)$"):
        tiny_rl_config(tmp_path, "embedded:tiny", rl_algorithm="wd1", beta=0.1, per_device_train_batch_size=8, steps=12)


def test_a_sampler_rule_is_declared_once_and_every_layer_phrases_it_with_its_flag(tmp_path):
    from gift.sampler import SamplerConfig
    from stages.evaluation.evaluate import EvalError, resolve_decoding

    with pytest.raises(ValueError, match=r"^lookahead must be a non-negative integer, got -1$"):
        SamplerConfig(lookahead=-1)  # the API's phrasing
    with pytest.raises(ValueError, match=r"^--lookahead -1: must be a non-negative integer$"):
        tiny_rl_config(tmp_path, "embedded:tiny", lookahead=-1, per_device_train_batch_size=8, steps=12)
    with pytest.raises(EvalError, match=r"^--lookahead -1: must be a non-negative integer$"):
        resolve_decoding([16], 8, lookahead=-1)
    with pytest.raises(EvalError, match=r"^--block_length 0: must be a positive integer$"):
        resolve_decoding([16], 0)
    with pytest.raises(ValueError, match=r"^--gen_length 24: must be a positive integer$"):
        tiny_rl_config(tmp_path, "embedded:tiny", gen_length="24", per_device_train_batch_size=8, steps=12)
    # The sampler's rules across options run at stage two's boundary too (same functions, same names).
    with pytest.raises(ValueError, match=r"^lookahead=1 commits by threshold: set threshold$"):
        tiny_rl_config(tmp_path, "embedded:tiny", lookahead=1, per_device_train_batch_size=8, steps=12)
