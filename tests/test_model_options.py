"""The model triple (source, model_type, trust_remote_code) is one definition shared by the commands."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from gift.adapters import KINDS
from gift.model_options import MODEL_TYPE_HELP, ModelSource, add_model_arguments
from stages.evaluation.evaluate import make_parser as eval_parser
from stages.reports.entropy_report import make_parser as entropy_parser
from stages.train.cold_start_config import ColdStartConfig


@pytest.mark.parametrize("make_parser", [eval_parser, entropy_parser])
def test_commands_take_the_same_model_options(make_parser, capsys):
    parser = make_parser()
    args = parser.parse_args(
        [
            "--model",
            "m",
            "--model_type",
            "dream",
            "--trust_remote_code",
            "--output_dir",
            "o",
            *(["--task", "sudoku"] if make_parser is eval_parser else ["--data", "d"]),
        ]
    )
    assert (args.model, args.model_type, args.trust_remote_code) == ("m", "dream", True)
    with pytest.raises(SystemExit):
        parser.parse_args(["--model", "m", "--model_type", "gpt", "--output_dir", "o"])
    assert "invalid choice: 'gpt'" in capsys.readouterr().err


def test_stage_config_fields_share_the_help_and_the_kinds():
    help_of = {f.name: f.metadata.get("help") for f in fields(ColdStartConfig)}
    assert help_of["model_type"] == MODEL_TYPE_HELP and all(kind in MODEL_TYPE_HELP for kind in KINDS)


def test_a_model_source_loads_and_spells_its_options():
    source = ModelSource("embedded:tiny")
    assert source.options() == {"model_type": None, "trust_remote_code": False}
    assert source.load().adapter.kind == "embedded"
    parser = argparse.ArgumentParser()
    add_model_arguments(parser)
    assert parser.parse_args(["--model", "x"]).trust_remote_code is False
