"""What a task is: everything training, evaluation, scoring and the reports need to know about it.

A task module builds one `Task` and the registry (`rewards.registry`) holds it; no other file branches on a
task's name. Importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rewards.columns import MissingColumnError

RewardFunc = Callable[..., list[float]]
Row = Mapping[str, Any]

# The embedded synthetic tasks' test sets: the d1 protocol's test size, drawn from a seed of their own so that
# the test puzzles do not depend on the training seed (training rows exclude them).
SYNTHETIC_TEST_SIZE = 256
SYNTHETIC_TEST_SEED = 1_000_003
SYNTHETIC_SPLITS = ("train", "test")

# The answer format of d1's GSM8K, MATH-500 and Countdown system texts, character for character.
D1_BOXED_FORMAT = """Respond in the following format:
<reasoning>
Your reasoning here
</reasoning>
<answer>
\\boxed{...}
</answer>"""


def column(task: str, row: Row, name: str) -> Any:
    """`row[name]`, or a `MissingColumnError` naming the task, the column and the columns the row has."""
    value = row.get(name)
    if value is None:
        raise MissingColumnError(f"{task} prompt needs column {name!r}; row has {sorted(row)}")
    return value


def answer_column(truth: Any, question: str) -> dict[str, Any]:
    """A d1 evaluation item's ground truth as the `answer` column (GSM8K, MATH-500)."""
    return {"answer": truth}


@dataclass(frozen=True)
class Task:
    """One task.

    Rewards and metric:
        reward_funcs: trl-style `fn(prompts, completions, **columns) -> list[float]`, summed by the trainer.
        columns: the ground-truth columns the rewards, the metric and the prompt read.
        metric: `fn(completions, **columns) -> {"accuracy": ..., ...}`.
        max_reward: the largest possible sum of the rewards.
        report_metrics: the metric keys a pipeline report tabulates (the first is its headline number).
        check_ground_truth: `fn(row)` raising `ValueError` when the row's ground truth cannot be scored (the
            scorer's check of each generation line; the row is known to hold every column).
    Prompts:
        system_prompt: the d1 evaluation system text, merged into the user turn before the question.
        question: `fn(row) -> str`, the question part of the d1 prompt.
        compact_prompt: `fn(row) -> str`, the embedded synthetic format's user turn; None: no compact format.
    Data:
        load: the real-set loader (`split`, `path`, `limit` keywords).
        protocol_size: the d1 protocol's test-set size (recorded next to every evaluation).
        hub_test_set: where the test set comes from without `--data` (None: `--data` is required).
        test_file_hint: the files `--data` takes when there is no hub set (for the error message).
        test_subset: d1 evaluates this many rows drawn from the test file (`d1_test_subset`), None: all.
        train_holdout: d1's RL leaves out the last rows of its seeded shuffle (`d1_train_rows`).
        train_options: extra `load` keywords for RL training rows (Countdown: 3-number problems only).
        synthetic: `fn(split, n, seed) -> rows` with `prompt`, `answer` (the gold completion) and the
            columns, for the embedded model; None: no synthetic data.
        d1_names: how d1's generation file names call the task; from_d1: `fn(ground_truth, question) ->
            columns` for one item of such a file.
    Reports:
        token_classes: `fn(prompt_tokens, answer_tokens) -> {answer position: class}` for the task's own
            token classes (Sudoku: empty and given cells), used by the entropy report and the structural
            control; positions left out are the report's generic classes. None: none.
        token_class_names: those classes, in report order.
        structural_betas: fixed per-token betas by class (the task's classes plus `EOS` and `other`) for a
            `{name}_structural` control arm (`gift.structural_control`); None: no such control.
    """

    name: str
    reward_funcs: tuple[RewardFunc, ...]
    columns: tuple[str, ...]
    metric: Callable[..., dict[str, float]]
    max_reward: float
    load: Callable[..., list[dict[str, Any]]]
    system_prompt: str
    question: Callable[[Row], str]
    protocol_size: int
    check_ground_truth: Callable[[Row], None]
    report_metrics: tuple[str, ...] = ("accuracy",)
    compact_prompt: Callable[[Row], str] | None = None
    hub_test_set: str | None = None
    test_file_hint: str = "a local test file"
    test_subset: int | None = None
    train_holdout: int = 0
    train_options: Mapping[str, Any] = field(default_factory=dict)
    synthetic: Callable[[str, int, int], list[dict[str, Any]]] | None = None
    d1_names: tuple[str, ...] = ()
    from_d1: Callable[[Any, str], dict[str, Any]] = answer_column
    token_classes: Callable[[Sequence[str], Sequence[str]], dict[int, str]] | None = None
    token_class_names: tuple[str, ...] = ()
    structural_betas: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        if not self.name or not self.reward_funcs or not self.columns:
            raise ValueError(f"task {self.name!r}: name, reward_funcs and columns must be non-empty")
        if not isinstance(self.protocol_size, int) or self.protocol_size <= 0:
            raise ValueError(
                f"task {self.name!r}: protocol_size must be a positive integer, got {self.protocol_size!r}"
            )
        if self.structural_betas is not None and self.token_classes is None:
            raise ValueError(f"task {self.name!r}: structural_betas need token_classes")


def check_synthetic_split(split: str) -> None:
    """Raise `ValueError` unless `split` is `train` or `test`."""
    if split not in SYNTHETIC_SPLITS:
        raise ValueError(f"unknown split {split!r}; choose 'train' or 'test'")
