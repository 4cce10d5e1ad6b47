"""Task data that every task shares: reading rows from a file or the hub, d1's row selection
(`d1_test_subset`, `d1_train_rows`) and the embedded synthetic sets (`rewards.data.synthetic`). Each task's
generator, loader and hub id are in its module (`rewards/tasks/`; `rewards.get_task(name).load`).

`datasets` is imported only inside the loaders that need it.
"""

from rewards.data.files import read_rows
from rewards.data.loaders import d1_test_subset, d1_train_rows

__all__ = [
    "d1_test_subset",
    "d1_train_rows",
    "read_rows",
]
