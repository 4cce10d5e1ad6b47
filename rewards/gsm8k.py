"""GSM8K: numeric correctness (2.0) plus two d1-style format rewards (0.5 each)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from rewards.columns import accuracy, judge_answers, texts
from rewards.extract import final_answer, has_tags_in_order, is_integer_text, last_number

TASK = "gsm8k"
COLUMNS = ("answer",)
CORRECT_REWARD = 2.0
FORMAT_REWARD = 0.5


def reference_number(answer: Any) -> Fraction:
    """The reference as a number: "18", "1,234", 18, or a full GSM8K solution ending in "#### 18"."""
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        return Fraction(answer)
    text = str(answer)
    if "####" in text:
        text = text.rsplit("####", 1)[1]
    value = last_number(text)
    if value is None:
        raise ValueError(f"gsm8k: reference answer {answer!r} holds no number")
    return value


def predicted_number(text: str) -> Fraction | None:
    """The number in the last `\\boxed{}`, else the last number in the last answer block."""
    answer = final_answer(text)
    return None if answer is None else last_number(answer)


def is_correct(text: str, answer: Any) -> bool:
    """Numbers compared exactly: "18", "18.0", "$18", "18 eggs" all equal 18."""
    predicted = predicted_number(text)
    return predicted is not None and predicted == reference_number(answer)


def gsm8k_correctness_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """2.0 when the extracted final number equals the reference number, else 0.0. Range {0, 2}."""
    return [CORRECT_REWARD if right else 0.0 for right in judge_answers(TASK, columns, completions, is_correct)]


def gsm8k_format_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """0.5 when `<reasoning>...</reasoning>` is followed by `<answer>...</answer>`. Range {0, 0.5}."""
    return [FORMAT_REWARD if has_tags_in_order(text) else 0.0 for text in texts(completions)]


def gsm8k_integer_reward(prompts: Any, completions: Sequence[Any], **columns: Any) -> list[float]:
    """0.5 when the final answer is written as a bare integer ("18", "-3", "1,234"). Range {0, 0.5}."""
    out = []
    for text in texts(completions):
        answer = final_answer(text)
        out.append(FORMAT_REWARD if answer is not None and is_integer_text(answer) else 0.0)
    return out


def gsm8k_metric(completions: Sequence[Any], **columns: Any) -> dict[str, float]:
    """Accuracy (boxed number, falling back to the answer block) and n."""
    return accuracy(judge_answers(TASK, columns, completions, is_correct))
