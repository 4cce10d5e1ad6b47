"""The one prompt builder: d1's evaluation wording per task, character for character."""

import hashlib

import pytest

from rewards import (
    COUNTDOWN_SYSTEM,
    GSM8K_SYSTEM,
    MATH_SYSTEM,
    REASONING_PREFILL,
    SUDOKU_SYSTEM,
    SYSTEM_PROMPTS,
    MissingColumnError,
    task_messages,
    task_prompt,
    task_question,
)

# sha256 of d1's four system strings (github.com/dllm-reasoning/d1, eval/gsm8k.py GSM_SYSTEM_PROMPT,
# eval/math500.py MATH500_SYSTEM_PROMPT, eval/countdown.py CTD_SYSTEM_PROMPT, eval/sudoku.py
# SUDOKU_SYSTEM_PROMPT), taken from d1's source: any edit of ours changes the tokens d1 measured with.
D1_SHA256 = {
    "gsm8k": "f11d75a706090b9523845d4a5314e268dcc1bd4bb3c76fdac3377e1504c0f1c2",
    "math": "3e82f3bac66b3bc1c8c3e02b804c0ac8388513b60cf078a30e30c7e35e7297e8",
    "countdown": "a303f737bca286cbdcc4b6e837caa783665115cc2fb96d3a25a4e68d7a1d4fd1",
    "sudoku": "758dc4e1b10cba4dca68348f590e014545d57b5a36e7370c36e73ed5c25f58d7",
}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize("task", sorted(D1_SHA256))
def test_system_texts_are_d1s(task):
    assert sha(SYSTEM_PROMPTS[task]) == D1_SHA256[task]


def test_d1_quirks_are_kept():
    assert "Wrap the final answer in a \\boxed{}. \nRespond" in GSM8K_SYSTEM  # trailing space
    assert "Wrap the final answer in a \\boxed{}.\nRespond" in MATH_SYSTEM
    assert MATH_SYSTEM.endswith('</answer>" \n')  # the stray quote of d1's MATH prompt
    assert "For example: \\boxed{a + b * c}Respond in the following format:" in COUNTDOWN_SYSTEM
    assert SUDOKU_SYSTEM.startswith("\nPlease solve the following 4x4 Sudoku puzzle.")
    assert SUDOKU_SYSTEM.endswith("[16-character solution string with no spaces or separators]\n</answer>\n")
    assert REASONING_PREFILL == "<reasoning>"


def test_questions_per_task():
    assert task_question("sudoku", {"puzzle": "4320004330100004"}) == (
        "Solve the following Sudoku puzzle: 4320004330100004\n"
    )
    # d1 prints a Python list; ints given as strings or numpy-like values print the same
    assert task_question("countdown", {"numbers": [49, 55, 53], "target": 51}) == "Numbers: [49, 55, 53]\nTarget: 51"
    assert task_question("countdown", {"numbers": ["49", "55", "53"], "target": "51"}) == (
        "Numbers: [49, 55, 53]\nTarget: 51"
    )
    question = "Janet’s ducks lay 16 eggs per day. "  # verbatim: no strip, unicode kept
    assert task_question("gsm8k", {"question": question, "answer": "18"}) == question
    assert task_question("math", {"question": "What is $1+1$?\n", "answer": "2"}) == "What is $1+1$?\n"


def test_prompt_is_one_user_turn_system_blank_line_question():
    row = {"numbers": [3, 5, 7], "target": 22}
    assert task_prompt("countdown", row) == COUNTDOWN_SYSTEM + "\n\nNumbers: [3, 5, 7]\nTarget: 22"
    assert task_messages("countdown", row) == [{"role": "user", "content": task_prompt("countdown", row)}]
    # Sudoku and Countdown prompts come from the ground-truth columns, never from a stale `question`
    stale = {"puzzle": "4320004330100004", "solution": "4321124334122134", "question": "something else"}
    assert task_prompt("sudoku", stale).endswith("\n\nSolve the following Sudoku puzzle: 4320004330100004\n")


def test_bad_rows_and_tasks():
    with pytest.raises(MissingColumnError, match="countdown prompt needs column 'target'"):
        task_prompt("countdown", {"numbers": [1, 2]})
    with pytest.raises(MissingColumnError, match="gsm8k prompt needs column 'question'"):
        task_messages("gsm8k", {"answer": "3"})
    with pytest.raises(ValueError, match="no prompt for task 'chess'"):
        task_prompt("chess", {})
