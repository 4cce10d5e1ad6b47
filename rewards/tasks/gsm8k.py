"""GSM8K (d1): grade-school word problems graded by the final number; the hub's test set."""

from __future__ import annotations

from pathlib import Path

from rewards import gsm8k as rules
from rewards.data import loaders
from rewards.data.files import field
from rewards.extract import last_number
from rewards.tasks.task import D1_BOXED_FORMAT, Row, Task, column

# d1 eval/gsm8k.py, GSM_SYSTEM_PROMPT, character for character (the space after `\\boxed{}. `).
GSM8K_SYSTEM = (
    "You are a math expert. You will be given a question to solve. Solve it step by step. "
    "Wrap the final answer in a \\boxed{}. \n" + D1_BOXED_FORMAT
)


def gsm8k_question(question: str) -> str:
    """d1's GSM8K question: the dataset's question, verbatim."""
    return question


def load_gsm8k(split: str = "test", path: str | Path | None = None, limit: int | None = None) -> list[dict]:
    """GSM8K rows `{"question", "answer", "reasoning"}`; `answer` is the number after `####`."""
    rows, source = loaders.source_rows(path, loaders.GSM8K_HUB, split)
    out = []
    for i, row in loaders.take(rows, limit):
        question, solution = field(row, "question", source, i), str(field(row, "answer", source, i))
        reasoning, _, final = solution.rpartition("####")
        final = final.strip().replace(",", "")
        if last_number(final) is None:
            raise ValueError(f"{source}: row {i}: column 'answer' has no number after '####'")
        out.append({"question": gsm8k_question(question), "answer": final, "reasoning": reasoning.strip()})
    return out


def check_ground_truth(row: Row) -> None:
    rules.reference_number(row["answer"])


TASK = Task(
    name="gsm8k",
    reward_funcs=(rules.gsm8k_correctness_reward, rules.gsm8k_format_reward, rules.gsm8k_integer_reward),
    columns=rules.COLUMNS,
    metric=rules.gsm8k_metric,
    max_reward=3.0,
    check_ground_truth=check_ground_truth,
    load=load_gsm8k,
    system_prompt=GSM8K_SYSTEM,
    question=lambda row: gsm8k_question(str(column("gsm8k", row, "question"))),
    protocol_size=1319,
    hub_test_set="hub:openai/gsm8k (test)",
    d1_names=("gsm8k",),
)
