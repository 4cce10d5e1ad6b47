"""trl's private state the stage-two trainer relies on is named in one place (stages/train/trl_private.py) and
checked against the installed trl: a trl that drops or renames any of it fails here, loudly, by name."""

from __future__ import annotations

import pytest
from trl import GRPOTrainer

from stages.train import trl_private
from stages.train.trl_private import check_trl, reference_built_by_us


def test_the_installed_trl_has_everything_the_trainer_relies_on():
    check_trl()


@pytest.mark.parametrize("name", trl_private.HOOKS)
def test_a_trl_without_one_of_the_hooks_is_refused_by_name(name):
    class Without(GRPOTrainer):
        pass

    setattr(Without, name, None)  # not callable: as if trl had removed it
    with pytest.raises(RuntimeError, match=f"GRPOTrainer has no {name}"):
        check_trl(Without)


@pytest.mark.parametrize("line", trl_private.INIT_STATE)
def test_a_trl_whose_init_no_longer_sets_the_state_is_refused_by_name(line):
    class Renamed(GRPOTrainer):
        def __init__(self):  # an __init__ without the private attributes
            pass

    with pytest.raises(RuntimeError, match=f"GRPOTrainer has no .*{line.split()[0]}"):
        check_trl(Renamed)


def test_trl_sees_beta_zero_only_while_it_builds_the_trainer():
    class Args:
        beta = 0.04

    args = Args()
    with reference_built_by_us(args) as beta:
        assert (beta, args.beta) == (0.04, 0.0)
    assert args.beta == 0.04
    with pytest.raises(KeyError), reference_built_by_us(args):
        raise KeyError("trl's __init__ failed")
    assert args.beta == 0.04  # restored on failure too
