"""Answer extraction on the shapes real model output takes."""

from fractions import Fraction

import pytest

from rewards.extract import (
    answer_block,
    completion_text,
    final_answer,
    has_tags_in_order,
    is_integer_text,
    last_boxed,
    last_number,
)


def _cases(extractor, pairs: list[tuple]) -> list:
    return [
        pytest.param(extractor, text, expected, id=f"{extractor.__name__}-{i}")
        for i, (text, expected) in enumerate(pairs)
    ]


# Every extractor on its table of (text, expected); a bool or None must come back as exactly that.
@pytest.mark.parametrize(
    "extractor, text, expected",
    [
        *_cases(
            answer_block,
            [
                ("<answer>12</answer>", "12"),
                ("<answer>1</answer> more <answer>\n 2 \n</answer>", "2"),
                ("<answer>1</answer> then <answer> 3 and no close", "3 and no close"),
                ("<answer>a\nb</answer>", "a\nb"),  # multi-line
                ("<answer></answer>", ""),
                ("no tags", None),
                ("", None),
                ("</answer> only a close", None),
            ],
        ),
        *_cases(
            last_boxed,
            [
                ("\\boxed{5}", "5"),
                ("a \\boxed{1} b \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
                ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
                ("\\boxed{a{b{c}}}", "a{b{c}}"),
                ("\\boxed{7} and then \\boxed{unbalanced", "7"),
                ("\\boxed 42 is it", "42"),
                ("\\fbox{3}", "3"),
                ("\\boxed", None),
                ("{{{{", None),
                ("nothing", None),
            ],
        ),
        *_cases(
            last_number,
            [
                ("18", Fraction(18)),
                ("18.0", Fraction(18)),
                ("$18", Fraction(18)),
                ("18 eggs.", Fraction(18)),
                ("The answer is 1,234,567.", Fraction(1234567)),
                ("-5", Fraction(-5)),
                ("answer: -5 dollars", Fraction(-5)),
                ("10-5", Fraction(5)),
                ("(3)-5", Fraction(5)),
                ("\\frac{1}{2}", Fraction(1, 2)),
                ("\\dfrac{3}{4}", Fraction(3, 4)),
                ("\\dfrac12", Fraction(1, 2)),
                ("-\\frac{3}{4}", Fraction(-3, 4)),
                ("\\frac{1}{-2}", Fraction(-1, 2)),
                ("1/2", Fraction(1, 2)),
                ("1{,}000", Fraction(1000)),
                ("1\\,000", Fraction(1000)),
                ("\u22127", Fraction(-7)),
                ("50%", Fraction(50)),
                (".5", Fraction(1, 2)),
                ("3,5", Fraction(5)),  # a list, not a thousands separator
                ("1/0", None),
                ("9" * 100, None),
                ("no digits", None),
                ("", None),
            ],
        ),
        *_cases(
            is_integer_text,
            [
                ("18", True),
                ("-3", True),
                ("1,234", True),
                ("$18", True),
                ("18.", True),
                ("\\boxed{7}", True),
                ("18.0", False),
                ("18 eggs", False),
                ("1/2", False),
                ("", False),
            ],
        ),
        *_cases(
            has_tags_in_order,
            [
                ("<reasoning>r</reasoning><answer>a</answer>", True),
                ("  <reasoning>\nr\n</reasoning>\n<answer>\na\n</answer>\n", True),
                ("r</reasoning> <answer>a</answer>", True),  # evaluation prefilled <reasoning>
                ("x <reasoning>r</reasoning><answer>a</answer>", False),
                ("<reasoning>r</reasoning>text<answer>a</answer>", False),
                ("<answer>a</answer><reasoning>r</reasoning>", False),
                ("<reasoning>r</reasoning><answer>a", False),
                ("", False),
            ],
        ),
    ],
)
def test_extractor(extractor, text, expected):
    got = extractor(text)
    assert got == expected and type(got) is type(expected)


def test_completion_text_shapes():
    assert completion_text("s") == "s"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "t"}]}]) == "t"
    assert completion_text({"content": "d"}) == "d"
    assert completion_text(None) == ""
    assert completion_text([]) == ""


def test_final_answer_prefers_boxed():
    assert final_answer("<answer>\\boxed{3}</answer>") == "3"
    assert final_answer("\\boxed{2} <answer>7</answer>") == "2"
    assert final_answer("<answer>7</answer>") == "7"
    assert final_answer("nothing") is None
