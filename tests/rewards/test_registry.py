"""The task registry."""

import pytest

import rewards
from rewards import TASKS, get_columns, get_metric, get_reward_funcs, get_task


def test_tasks_and_columns():
    assert set(TASKS) == {"sudoku", "countdown", "gsm8k", "math"}
    assert get_columns("sudoku") == ("puzzle", "solution")
    assert get_columns("countdown") == ("numbers", "target")
    assert get_columns("gsm8k") == ("answer",) == get_columns("math")


def test_unknown_task_names_known_ones():
    with pytest.raises(ValueError, match="known tasks: .*countdown.*gsm8k.*math.*sudoku"):
        get_reward_funcs("chess")


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_is_complete(name):
    task = get_task(name)
    assert task.name == name and callable(task.metric) and callable(task.load)
    assert get_metric(name) is task.metric
    funcs = get_reward_funcs(name)
    assert funcs and all(callable(f) and f.__doc__ and "Range" in f.__doc__ for f in funcs)
    # every reward accepts the trl keyword call with extra columns it does not use
    columns = {c: ["1"] for c in task.columns}
    if name == "sudoku":
        columns = {"puzzle": ["0" * 16], "solution": ["1" * 16]}
    if name == "countdown":
        columns = {"numbers": [[1, 2]], "target": [3]}
    total = sum(
        f(prompts=["p"], completions=["<answer>x</answer>"], completion_ids=[[1]], trainer_state=None, **columns)[0]
        for f in funcs
    )
    assert 0.0 <= total <= task.max_reward


def test_public_api_exported():
    for name in rewards.__all__:
        assert hasattr(rewards, name)


def test_d1_row_selection_is_recorded_on_the_task():
    # d1's eval/eval.py num_evals and diffu-grpo/diffu_grpo_train.py holdout / Countdown filter
    assert {name: (t.test_subset, t.train_holdout, dict(t.train_options)) for name, t in TASKS.items()} == {
        "sudoku": (256, 500, {}),
        "countdown": (256, 500, {"num_numbers": 3}),
        "gsm8k": (None, 0, {}),
        "math": (None, 0, {}),
    }
