"""Synthetic tasks for the embedded default, in a compact format a ~1M-parameter model can learn.

The full d1 prompt (system skeleton + instructions) is hundreds of characters; for the embedded
character-level model the prompt is just the puzzle, and the answer keeps the output format taught in
both stages, with single-token tags: `<reasoning>...</reasoning><answer>...</answer>`. Train and test
sets are disjoint (training puzzles exclude the test puzzles).
"""

from __future__ import annotations

from collections.abc import Sequence

from rewards.data.countdown_gen import countdown_reasoning, generate_countdown
from rewards.data.sudoku_gen import generate_sudoku

SYNTHETIC_TASKS = ("sudoku", "countdown")
TEST_SIZE = 256  # the d1 protocol's Sudoku and Countdown test sizes
_TEST_SEED = 1_000_003  # test puzzles do not depend on the training seed
SUDOKU_CELLS = 16  # 4x4


def _check(task: str) -> None:
    if task not in SYNTHETIC_TASKS:
        raise ValueError(f"unknown synthetic task {task!r}; choose one of {', '.join(SYNTHETIC_TASKS)}")


def synthetic_rows(task: str, split: str, n: int, seed: int = 0, empties: tuple[int, int] = (8, 10)) -> list[dict]:
    """Rows with `prompt`, `answer` (the gold completion) and the task's ground-truth columns."""
    _check(task)
    if split not in ("train", "test"):
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
    if task == "sudoku":
        test = generate_sudoku(TEST_SIZE, seed=_TEST_SEED, empties=empties)
        items = test[:n] if split == "test" else generate_sudoku(n, seed=seed, empties=empties,
                                                                    exclude=[t["puzzle"] for t in test])
        return [{**it, "prompt": it["puzzle"], "answer": f"<reasoning></reasoning><answer>{it['solution']}</answer>"}
                for it in items]
    test = generate_countdown(TEST_SIZE, seed=_TEST_SEED, num_numbers=3, number_range=(1, 30), target_range=(1, 100))
    if split == "test":
        items = test[:n]
    else:
        held = {(tuple(t["numbers"]), t["target"]) for t in test}
        items = [it for it in generate_countdown(n + len(held), seed=seed, num_numbers=3, number_range=(1, 30),
                                                 target_range=(1, 100))
                 if (tuple(it["numbers"]), it["target"]) not in held][:n]
    return [{**it, "prompt": f"{','.join(map(str, it['numbers']))}={it['target']}",
             "answer": f"<reasoning>{countdown_reasoning(it['numbers'], it['target'], it['solution'])}</reasoning>"
                       f"<answer>{it['solution']}</answer>"} for it in items]


def synthetic_examples(task: str, n: int, seed: int = 0) -> list[dict]:
    """Training prompt/answer examples of a synthetic task."""
    return [{"prompt": r["prompt"], "answer": r["answer"]} for r in synthetic_rows(task, "train", n, seed)]


def compact_sudoku_cells(puzzle: str, answer_tokens: Sequence[str]) -> dict[int, bool]:
    """Where the solution cells sit in a compact Sudoku answer: `{token position: cell was empty}`.

    The layout `synthetic_rows` writes: the prompt is the 16-digit puzzle (`0` = empty) and the answer is
    `<reasoning>...</reasoning><answer>` + 16 solution digits + `</answer>`. `answer_tokens` are the
    answer's tokens as strings; positions are found by character offsets, so any tokenizer works. A
    cell is a one-digit token between `<answer>` and `</answer>`; no tags, no cells (empty dict).
    Raises `ValueError` when the puzzle is not 16 digits.
    """
    puzzle = str(puzzle).strip()
    if len(puzzle) != SUDOKU_CELLS or not puzzle.isdigit():
        raise ValueError(f"prompt {puzzle!r} is not a 16-digit 4x4 puzzle")
    text = "".join(answer_tokens)
    open_at = text.find("<answer>")
    close_at = text.find("</answer>", open_at + 1)
    if open_at < 0 or close_at < 0:
        return {}
    first, offset, cells = open_at + len("<answer>"), 0, {}
    for position, token in enumerate(answer_tokens):
        cell = offset - first
        if 0 <= cell < SUDOKU_CELLS and offset < close_at and len(token) == 1 and token.isdigit():
            cells[position] = puzzle[cell] == "0"
        offset += len(token)
    return cells
