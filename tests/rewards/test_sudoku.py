"""Sudoku reward and metric: exact cell fractions on hand-written completions."""

import pytest

from rewards import get_reward_funcs, sudoku_metric, sudoku_reward

PUZZLE = "0304003120033400"  # 8 empty cells
SOLUTION = "1324423121433412"


def reward(text, puzzle=PUZZLE, solution=SOLUTION):
    return sudoku_reward(None, [text], puzzle=[puzzle], solution=[solution])[0]


def with_cells(**changes):
    cells = list(SOLUTION)
    for index, digit in changes.items():
        cells[int(index[1:])] = digit
    return "".join(cells)


def test_correct_solution_scores_one():
    assert reward(f"<reasoning>r</reasoning>\n<answer>\n{SOLUTION}\n</answer>") == 1.0


def test_chat_message_completion():
    msgs = [{"role": "assistant", "content": f"<answer>{SOLUTION}</answer>"}]
    assert sudoku_reward(None, [msgs], puzzle=[PUZZLE], solution=[SOLUTION]) == [1.0]


def test_partial_fill_counts_empty_cells_only():
    # cell 0 is empty (wrong now), cell 1 is a given (changing it does not matter)
    assert reward(f"<answer>{with_cells(c0='4', c1='1')}</answer>") == 7 / 8


def test_puzzle_echoed_scores_zero():
    assert reward(f"<answer>{PUZZLE}</answer>") == 0.0


def test_digits_only_with_separators():
    rows = " | ".join(SOLUTION[i : i + 4] for i in range(0, 16, 4))
    assert reward(f"<answer>[{rows}]</answer>") == 1.0


def test_short_answer_is_padded():
    # only the first 4 digits: empty cell 0 correct (1), cell 2 correct (2); 6 others missing
    assert reward(f"<answer>{SOLUTION[:4]}</answer>") == 2 / 8


def test_long_answer_is_truncated():
    assert reward(f"<answer>{SOLUTION}9999</answer>") == 1.0


def test_last_block_wins_and_unclosed_block():
    assert reward(f"<answer>{SOLUTION}</answer><answer>{PUZZLE}</answer>") == 0.0
    assert reward(f"<answer>{PUZZLE}</answer><answer>{SOLUTION}") == 1.0


def test_unicode_digits_ignored():
    arabic = "".join(chr(0x0660 + int(d)) for d in SOLUTION)
    assert reward(f"<answer>{arabic}</answer>") == 0.0


@pytest.mark.parametrize("text", ["", "no tags", SOLUTION, "</answer>"])
def test_no_answer_block_scores_zero(text):
    assert reward(text) == 0.0


def test_integer_puzzle_from_csv_reader_is_zero_padded():
    assert reward(f"<answer>{SOLUTION}</answer>", puzzle=int(PUZZLE)) == 1.0


def test_bad_ground_truth_is_a_clear_error():
    with pytest.raises(ValueError, match="puzzle"):
        reward("<answer>1</answer>", puzzle="123")


def test_missing_column_names_it():
    with pytest.raises(KeyError, match="solution"):
        sudoku_reward(None, ["x"], puzzle=[PUZZLE])
    with pytest.raises(ValueError, match="puzzle"):
        sudoku_reward(None, ["x"], solution=[SOLUTION])


def test_metric_pools_cells_over_puzzles():
    other_puzzle = "1000000000000000"  # 15 empty cells (not unique, fine for the metric)
    completions = [f"<answer>{SOLUTION}</answer>", f"<answer>{SOLUTION[:8]}</answer>"]
    # puzzle 1: 8/8; puzzle 2: cells 1..7 of the 15 empties right
    m = sudoku_metric(completions, puzzle=[PUZZLE, other_puzzle], solution=[SOLUTION, SOLUTION])
    assert m["cell_accuracy"] == pytest.approx((8 + 7) / (8 + 15))
    assert m["accuracy"] == m["cell_accuracy"]
    assert m["solved"] == 0.5
    assert m["n"] == 2


def test_registry_entry():
    assert get_reward_funcs("sudoku") == [sudoku_reward]
