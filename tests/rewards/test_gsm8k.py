"""GSM8K: numeric correctness (2.0) and d1-style format rewards (0.5 each)."""

import pytest

from rewards import (
    get_reward_funcs,
    gsm8k_correctness_reward,
    gsm8k_format_reward,
    gsm8k_integer_reward,
    gsm8k_metric,
)


def correct(text, answer="18"):
    return gsm8k_correctness_reward(None, [text], answer=[answer])[0]


@pytest.mark.parametrize(
    "answer_text",
    ["18", "18.0", "$18", "18 eggs", "18.", "$18.00", "The answer is 18", "\\boxed{18}", "18\n"],
)
def test_number_forms_match(answer_text):
    assert correct(f"<reasoning>...</reasoning>\n<answer>{answer_text}</answer>") == 2.0


@pytest.mark.parametrize(
    "text, answer, expected",
    [
        ("<answer>1,234</answer>", "1234", 2.0),
        ("<answer>1234</answer>", "1,234", 2.0),
        ("<answer>-7</answer>", "-7", 2.0),
        ("<answer>7</answer>", "-7", 0.0),
        ("<answer>\\frac{1}{2}</answer>", "0.5", 2.0),
        ("<answer>17</answer>", "18", 0.0),
        ("<answer>180</answer>", "18", 0.0),
        ("<answer>no number</answer>", "18", 0.0),
        ("18", "18", 0.0),  # no answer block and no box
        ("<answer>18 then", "18", 2.0),  # unclosed final block
        ("<answer>3</answer> and \\boxed{18}", "18", 2.0),  # boxed wins (evaluation protocol)
        ("<answer>18</answer>", "Janet has... #### 18", 2.0),  # full GSM8K solution as reference
        ("<answer>18</answer>", 18, 2.0),
    ],
)
def test_correctness(text, answer, expected):
    assert correct(text, answer) == expected


def test_format_reward():
    good = "<reasoning>\nthink\n</reasoning>\n<answer>\n18\n</answer>"
    prefilled = "\nthink\n</reasoning>\n<answer>\n18\n</answer>"
    bad = ["<answer>18</answer>", "<reasoning>x</reasoning> text <answer>18</answer>", ""]
    assert gsm8k_format_reward(None, [good, prefilled] + bad) == [0.5, 0.5, 0.0, 0.0, 0.0]


def test_integer_reward():
    texts = [
        "<answer>18</answer>",
        "<answer>-3</answer>",
        "<answer>\\boxed{1,234}</answer>",
        "<answer>18 eggs</answer>",
        "<answer>18.5</answer>",
        "no answer",
    ]
    assert gsm8k_integer_reward(None, texts) == [0.5, 0.5, 0.5, 0.0, 0.0, 0.0]


def test_chat_messages_and_missing_column():
    msgs = [[{"role": "assistant", "content": "<answer>18</answer>"}]]
    assert gsm8k_correctness_reward(None, msgs, answer=["18"]) == [2.0]
    with pytest.raises(KeyError, match="answer"):
        gsm8k_correctness_reward(None, msgs)


def test_bad_reference_is_an_error():
    with pytest.raises(ValueError, match="reference"):
        correct("<answer>1</answer>", "none")


def test_metric_and_registry():
    m = gsm8k_metric(["\\boxed{18}", "<answer>17</answer>"], answer=["18", "18"])
    assert m == {"accuracy": 0.5, "n": 2}
    assert get_reward_funcs("gsm8k") == [gsm8k_correctness_reward, gsm8k_format_reward, gsm8k_integer_reward]
