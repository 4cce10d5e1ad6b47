"""Countdown reward: 1.0 / 0.1 / 0.0 on hand-written expressions, never evaluating model text."""

import pytest

from rewards import countdown_metric, countdown_reward, get_reward_funcs
from rewards.tasks.countdown import clean_expression, evaluate, parse_numbers

NUMBERS, TARGET = [3, 5, 7], 22  # 3 * 5 + 7


def reward(answer, numbers=NUMBERS, target=TARGET):
    return countdown_reward(None, [answer], numbers=[numbers], target=[target])[0]


@pytest.mark.parametrize(
    "answer",
    [
        "<answer>3*5+7</answer>",
        "<reasoning>15 + 7</reasoning>\n<answer>\n(3 * 5) + 7\n</answer>",
        "<answer>7 + 5 * 3</answer>",
        "<answer>3 \u00d7 5 + 7</answer>",
        "<answer>$3 \\times 5 + 7$</answer>",
        "<answer>3*5+7 = 22</answer>",
        "<answer>3*5+7.</answer>",
        "<answer>3*5+7",  # unclosed final block
        "<answer>0</answer><answer>3*5+7</answer>",
    ],
)
def test_correct(answer):
    assert reward(answer) == 1.0


@pytest.mark.parametrize(
    "answer",
    [
        "<answer>3+5+7</answer>",  # wrong value
        "<answer>3*5+7+7</answer>",  # 7 used twice
        "<answer>3*5</answer>",  # 7 unused
        "<answer>15+7</answer>",  # numbers not the given ones
        "<answer>3*5+7=23</answer>",
        "<answer></answer>",
        "<answer>the expression is 3*5+7</answer>",
        "<answer>__import__('os').system('echo pwned')</answer>",
        "<answer>9**9**9</answer>",
        "<answer>3**5+7</answer>",
        "<answer>3//5+7</answer>",
        "<answer>3.0*5+7</answer>",
        "<answer>(3*5+7</answer>",
        "<answer>" + "(" * 500 + "3*5+7" + ")" * 500 + "</answer>",
        "<answer>3*5" + " " * 300 + "+7</answer>",  # over the length bound
        "<answer>[3*5+7]</answer>",
    ],
)
def test_answer_present_but_not_correct(answer):
    assert reward(answer) == 0.1


@pytest.mark.parametrize("answer", ["", "3*5+7", "no tags at all", "</answer>"])
def test_no_answer_tag(answer):
    assert reward(answer) == 0.0


def test_division_by_zero_and_fractions():
    assert reward("<answer>3/(5-5)+7</answer>", numbers=[3, 5, 5, 7], target=7) == 0.1
    assert reward("<answer>(3/5)*10</answer>", numbers=[3, 5, 10], target=6) == 1.0
    assert reward("<answer>1/3*3</answer>", numbers=[1, 3, 3], target=1) == 1.0  # exact arithmetic


def test_unary_minus_and_duplicates():
    assert reward("<answer>-3+5*5</answer>", numbers=[5, 3, 5], target=22) == 1.0
    assert evaluate("-3+5", [3, 5], allow_unary_minus=False) is None


def test_ground_truth_forms():
    assert reward("<answer>3*5+7</answer>", numbers="3,5,7", target="22") == 1.0
    assert reward("<answer>3*5+7</answer>", numbers="[3, 5, 7]", target=22.0) == 1.0
    assert parse_numbers((1, 2)) == [1, 2]
    with pytest.raises(ValueError, match="target"):
        reward("<answer>1</answer>", target="x")


def test_clean_expression():
    assert clean_expression(" 22 = 3*5+7 ") == ("3*5+7", 22)
    assert clean_expression("3 \u00d7 5 + 7.") == ("3 * 5 + 7", None)
    assert clean_expression("a=b=c") == ("a=b=c", None)


def test_missing_column():
    with pytest.raises(KeyError, match="target"):
        countdown_reward(None, ["<answer>1</answer>"], numbers=[[1]])


def test_metric_and_registry():
    m = countdown_metric(
        ["<answer>3*5+7</answer>", "<answer>1</answer>", ""], numbers=[NUMBERS] * 3, target=[TARGET] * 3
    )
    assert m == {"accuracy": pytest.approx(1 / 3), "n": 3}
    assert get_reward_funcs("countdown") == [countdown_reward]
