"""Task data: seeded generators (Sudoku, Countdown) with SFT reasoning traces, and what the real-set loaders share
(each task's own loader is `rewards.get_task(name).load`, in rewards/tasks/).

`datasets` is imported only inside the loaders that need it.
"""

from rewards.data.countdown_gen import countdown_reasoning, generate_countdown
from rewards.data.files import read_rows
from rewards.data.loaders import d1_test_subset, d1_train_rows
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
    "read_rows",
    "solve",
    "sudoku_reasoning",
]
