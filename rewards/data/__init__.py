"""Task data: seeded generators (Sudoku, Countdown) with SFT reasoning traces, and real-set loaders.

`datasets` is imported only inside the loaders that need it.
"""

from rewards.data.countdown_gen import countdown_reasoning, generate_countdown
from rewards.data.files import read_rows
from rewards.data.loaders import (
    d1_test_subset,
    d1_train_rows,
    load_countdown,
    load_gsm8k,
    load_math500,
    load_sudoku,
)
from rewards.data.sudoku_gen import (
    all_grids,
    count_solutions,
    generate_sudoku,
    solve,
    sudoku_reasoning,
)

__all__ = [
    "all_grids",
    "count_solutions",
    "countdown_reasoning",
    "d1_test_subset",
    "d1_train_rows",
    "generate_countdown",
    "generate_sudoku",
    "load_countdown",
    "load_gsm8k",
    "load_math500",
    "load_sudoku",
    "read_rows",
    "solve",
    "sudoku_reasoning",
]
