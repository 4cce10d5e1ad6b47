"""MATH-500: math-verify equivalence (2.0) with bounded time, plus the format reward."""

import time

import pytest

from rewards import get_reward_funcs, math_correctness_reward, math_format_reward, math_metric
from rewards.tasks import math as math_task


def correct(text, answer):
    return math_correctness_reward(None, [text], answer=[answer])[0]


@pytest.mark.parametrize(
    "predicted, reference",
    [
        ("\\frac{1}{2}", "\\frac12"),
        ("\\dfrac{1}{2}", "\\frac{1}{2}"),
        ("0.5", "\\frac{1}{2}"),
        ("(x+1)^2", "x^2+2x+1"),
        ("\\sqrt{18}", "3\\sqrt{2}"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\text{Evelyn}", "\\text{Evelyn}"),
        ("10", "10\\%"),
        ("1,000", "1000"),
    ],
)
def test_equivalent_answers(predicted, reference):
    assert correct(f"<reasoning>r</reasoning><answer>\\boxed{{{predicted}}}</answer>", reference) == 2.0


@pytest.mark.parametrize(
    "text, reference",
    [
        ("<answer>\\boxed{3}</answer>", "4"),
        ("<answer>\\boxed{x^2}</answer>", "x^3"),
        ("<answer></answer>", "1"),
        ("no answer at all", "1"),
        ("<answer>\\boxed{9^{9^{9}}}</answer>", "3"),
        ("<answer>\\boxed{9**9**9}</answer>", "3"),
        ("<answer>\\boxed{100000!}</answer>", "3"),
        ("<answer>\\boxed{" + "(" * 200 + "1" + ")" * 200 + "}</answer>", "3"),
        ("<answer>\\boxed{__import__('os').system('echo pwned')}</answer>", "3"),
    ],
)
def test_not_equivalent(text, reference):
    start = time.perf_counter()
    assert correct(text, reference) == 0.0
    assert time.perf_counter() - start < 2.0


def test_answer_block_fallback_and_boxed_reference():
    assert correct("<answer>\\frac{2}{4}</answer>", "\\frac12") == 2.0
    assert correct("<answer>\\boxed{5}</answer>", "so \\boxed{5}") == 2.0


def test_string_fallback_without_math_verify(monkeypatch):
    monkeypatch.setattr(math_task, "_math_verify", lambda: None)
    assert correct("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}") == 2.0
    assert correct("\\boxed{0.5}", "\\frac{1}{2}") == 2.0  # both plain numbers
    assert correct("\\boxed{(x+1)^2}", "x^2+2x+1") == 0.0  # needs algebra


def test_pre_check():
    assert math_task.too_risky("9^{9^{9}}")
    assert math_task.too_risky("2^99999")
    assert math_task.too_risky("x" * 1000)
    assert not math_task.too_risky("x^2y^2+\\frac{1}{2}")


def test_format_reward():
    texts = [
        "<reasoning>r</reasoning>\n<answer>\\boxed{1}</answer>",
        "<reasoning>r</reasoning>\n<answer>1</answer>",
        "<reasoning>r \\boxed{1}</reasoning>\n<answer>1</answer>",
        "<answer>\\boxed{1}</answer>",
        "<reasoning>r</reasoning><answer>\\boxed{1</answer>",
    ]
    assert math_format_reward(None, texts) == [0.5, 0.0, 0.0, 0.0, 0.0]


def test_metric_missing_column_and_registry():
    assert math_metric(["\\boxed{2}", "\\boxed{3}"], answer=["2", "2"]) == {"accuracy": 0.5, "n": 2}
    with pytest.raises(KeyError, match="answer"):
        math_correctness_reward(None, ["x"], solution=["2"])
    assert get_reward_funcs("math") == [math_correctness_reward, math_format_reward]


def test_works_outside_the_main_thread():
    # math-verify's signal timeouts are main-thread only; elsewhere the reward runs without them
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        out = pool.submit(correct, "\\boxed{(x+1)^2}", "x^2+2x+1").result(timeout=30)
    assert out == 2.0
