"""Every extraction path of each task's scorer, on hand-written completions in the shape d1's prompts ask
for (`<reasoning>` is prefilled, so completions start inside it; answers in `\\boxed{}` inside `<answer>`).

Several cases are the disagreement classes with d1's own parser listed in docs/evaluation.md.
"""

import pytest

from rewards.extract import final_answer
from rewards.tasks import countdown, gsm8k, sudoku
from rewards.tasks import math as math_task

R = "\nLet me think.\n</reasoning>\n"  # the rest of a prefilled reasoning block


# --------------------------------------------------------------------------- the shared answer rule


@pytest.mark.parametrize(
    "text, expected",
    [
        (R + "<answer>\n\\boxed{49 + 55 - 53}\n</answer>", "49 + 55 - 53"),  # box in the answer block
        ("So the answer is \\boxed{7}.", "7"),  # box, no answer block
        (R + "\\boxed{1} then \\boxed{2}<answer>x</answer>", "2"),  # the last box wins
        (R + "<answer>\n12\n</answer>", "12"),  # no box: the answer block
        (R + "<answer>\n\\boxed{}101\n</answer>", "101"),  # empty box: the block, box removed
        (R + "<answer>\n\\boxed{...}\n</answer>", ""),  # the prompt's template only
        (R + "\\boxed{5} and <answer>\\boxed{6", "5"),  # unbalanced last box: the earlier
        (R + "<answer>\n\\boxed{36", "\\boxed{36"),  # nothing balanced: the open block
        ("no tags, no box", None),
    ],
)
def test_final_answer_paths(text, expected):
    assert final_answer(text) == expected


# --------------------------------------------------------------------------- Countdown


NUMBERS, TARGET = [49, 55, 53], 51


def cd(text, numbers=NUMBERS, target=TARGET):
    return countdown.score(text, numbers, target)


@pytest.mark.parametrize(
    "text",
    [
        R + "<answer>\n\\boxed{49 + 55 - 53}\n</answer>",  # what the prompt asks for
        R + "<answer>\n\\boxed{55 - 53 + 49 = 51}\n</answer>",  # "= target" claim split off
        R + "<answer>\n\\boxed{49 + 55 - 53}",  # block cut by the length limit
        "The expression \\boxed{49 + 55 - 53} works.",  # box without answer tags
        R + "<answer>\n49 + 55 - 53\n</answer>",  # no box: the answer block (d1 training format)
        R + "<answer>\n\\boxed{}\n49 + 55 - 53\n</answer>",  # empty box, expression beside it
        R + "\\boxed{1 + 2}<answer>\\boxed{49 + 55 - 53}</answer>",  # last box wins
    ],
)
def test_countdown_correct_paths(text):
    assert cd(text) == countdown.CORRECT


def test_countdown_latex_operators_in_the_box():
    assert cd(R + "<answer>\n\\boxed{(55 - 53) \\times 49 \\div 2}\n</answer>", [55, 53, 49, 2], 49) == 1.0


@pytest.mark.parametrize(
    "text, expected",
    [
        (R + "<answer>\\boxed{49 + 55 - 53}</answer> \\boxed{49 + 55 + 53}", countdown.WRONG),  # last box is wrong
        (R + "<answer>\n\\boxed{49 + 55 - 53 = 52}\n</answer>", countdown.WRONG),  # claim contradicts the target
        (R + "<answer>\n\\boxed{49 + 55}\n</answer>", countdown.WRONG),  # 53 unused
        (R + "<answer>\n\\boxed{...}\n</answer>", countdown.WRONG),  # template only: an empty answer
        (R + "49 + 55 - 53 = 51", countdown.NO_ANSWER),  # neither box nor tag
        ("\\boxed{...}", countdown.NO_ANSWER),
    ],
)
def test_countdown_other_paths(text, expected):
    assert cd(text) == expected


def test_countdown_reward_uses_the_same_rule():
    text = R + "<answer>\n\\boxed{49 + 55 - 53}\n</answer>"
    assert countdown.countdown_reward(
        None, [text, R + "<answer>1</answer>", "x"], numbers=[NUMBERS] * 3, target=[TARGET] * 3
    ) == [1.0, 0.1, 0.0]


# --------------------------------------------------------------------------- Sudoku


PUZZLE, SOLUTION = "4320004330100004", "4321124334122134"  # 8 empty cells


def cells(text):
    return sudoku.cell_counts(text, PUZZLE, SOLUTION)


@pytest.mark.parametrize(
    "text, correct",
    [
        (R + f"<answer>\n{SOLUTION}\n</answer>", 8),  # the asked-for string
        (R + f"<answer>\nThe solved 4x4 Sudoku puzzle is:\n{SOLUTION}\n</answer>", 8),  # prose before the run
        (R + "<answer>\n4321\n1243\n3412\n2134\n</answer>", 8),  # row by row: all digits
        (R + f"<answer>\n1111111111111111 then {SOLUTION}</answer>", 8),  # last run of 16+ digits
        (R + f"<answer>\n{SOLUTION}99</answer>", 8),  # long run: first 16
        (R + "<answer>\n4321124</answer>", 3),  # short: padded with 0
        (R + f"<answer>\n{SOLUTION}", 8),  # unclosed final block
        (R + f"</answer>\n{SOLUTION}", 0),  # digits outside any block
        (R + f"<>answer>\n{SOLUTION}\n</answer>", 0),  # broken tag: no block
    ],
)
def test_sudoku_paths(text, correct):
    assert cells(text) == (correct, 8)


# --------------------------------------------------------------------------- GSM8K


@pytest.mark.parametrize(
    "text, answer, correct",
    [
        (R + "<answer>\n\\boxed{18}\n</answer>", 18.0, True),
        (R + "<answer>\n\\boxed{43,500}\n</answer>", 43500.0, True),  # thousands separator (d1 reads 43)
        (R + "<answer>\n\\boxed{\\$8,400}\n</answer>", 8400.0, True),
        (R + "<answer>\n\\boxed{45/3}\n</answer>", 15.0, True),  # a fraction's value (d1 reads 45)
        (R + "<answer>\n\\boxed{\\frac{2}{3}}\n</answer>", 2.0, False),  # 2/3 is not 2 (d1 reads "\frac{2")
        (R + "Josh makes \\boxed{0}.\n</answer>\n\\boxed{120}", 120.0, True),  # last box (d1 takes the first)
        (R + "<answer>\n\\boxed{}101\n</answer>", 101.0, True),  # empty box: the block's number
        (R + "<answer>\nShe makes $18 every day.\n</answer>", 18.0, True),  # no box: last number of the block
        (R + "<answer>\n\\boxed{36", 36.0, True),  # unclosed box in an open block
        (R + "The answer is 18.", 18.0, False),  # no box, no block
    ],
)
def test_gsm8k_paths(text, answer, correct):
    assert gsm8k.is_correct(text, answer) is correct


# --------------------------------------------------------------------------- MATH


@pytest.mark.parametrize(
    "text, answer, correct",
    [
        (R + "<answer>\n\\boxed{\\frac{\\sqrt{3}}{3}}\n</answer>", "\\frac{\\sqrt{3}}{3}", True),  # nested braces
        (R + "<answer>\n\\boxed{\\dfrac{1}{4}}\n</answer>", "\\frac14", True),
        ("Hence \\boxed{2516_8}.", "2516_8", True),  # box without tags
        (R + "<answer>\n\\frac{1}{4}\n</answer>", "\\frac{1}{4}", True),  # no box: the answer block
        (R + "<answer>\n\\boxed{...}\n</answer>", "3", False),  # template only
        (R + "<answer>\n\\boxed{7}\n</answer>", "8", False),
    ],
)
def test_math_string_paths(text, answer, correct):
    assert math_task.is_correct(text, answer) is correct


@pytest.mark.parametrize(
    "predicted, answer",
    [
        ("15.975", "\\frac{639}{40}"),  # d1's string compare says no
        ("\\frac{3 \\sqrt{27}}{27}", "\\frac{\\sqrt{3}}{3}"),
        ("0.25", "\\frac14"),
    ],
)
def test_math_verify_equivalences(predicted, answer):
    pytest.importorskip("math_verify")
    assert math_task.is_correct(R + f"<answer>\n\\boxed{{{predicted}}}\n</answer>", answer)
