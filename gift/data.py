"""Prompt/answer examples for stage one: loading, chat formatting, tokenisation and collation.

An example is `{"prompt": str | list[chat messages], "answer": str}`. The prompt goes through the
tokenizer's chat template with the generation prompt; the answer follows it and ends with EOS. Only
answer positions (and, optionally, the EOS padding tail, as d1 trains) are ever noised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import PreTrainedTokenizerBase

# What an example longer than max_length does: an error naming its row, or it is dropped.
TOO_LONG = ("error", "drop")
DATASET_FORMATS = ("prompt_answer", "s1k")  # columns prompt/answer, or the s1K reasoning sets
PAD_TO = ("max_length", "longest")  # the collator's width: max_length, or the batch's longest example
REASONING_FORMAT = "<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>"
# s1K (simplescaling/s1K) and s1K-1.1 name their trace and final attempt differently.
S1K_FIELDS = {
    "s1K": ("thinking_trajectories", "attempt"),
    "s1K-1.1": ("deepseek_thinking_trajectory", "deepseek_attempt"),
}


class DataError(ValueError):
    """Bad training data, naming the source, row and field."""


def read_jsonl(path: str | Path) -> list[dict]:
    """Rows of a JSONL file; a broken line is an error naming the file and line."""
    rows = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{line_no}: not valid JSON ({err.msg})") from err
            if not isinstance(row, dict):
                raise DataError(f"{path}:{line_no}: expected a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def load_rows(source: str, split: str = "train", subset: str | None = None) -> list[dict]:
    """Rows from a local `.jsonl`/`.json` file, or from a hub dataset through `datasets`."""
    path = Path(source)
    if path.suffix in (".jsonl", ".json") or path.exists():
        if not path.is_file():
            raise DataError(f"{source}: no such data file")
        if path.suffix == ".json":
            rows = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(rows, list):
                raise DataError(f"{source}: expected a JSON list of objects")
            return rows
        return read_jsonl(path)
    import datasets  # hub datasets only

    return list(datasets.load_dataset(source, subset, split=split))


def format_reasoning(reasoning: str, answer: str) -> str:
    """The output format both stages teach: `<reasoning>...</reasoning>` then `<answer>...</answer>`."""
    return REASONING_FORMAT.format(reasoning=reasoning.strip(), answer=answer.strip())


def s1k_examples(rows: list[dict], source: str = "s1K", variant: str | None = None) -> list[dict]:
    """s1K-style rows (question + thinking trace + attempt) as prompt/answer examples."""
    variant = variant or ("s1K-1.1" if rows and "deepseek_attempt" in rows[0] else "s1K")
    if variant not in S1K_FIELDS:
        raise DataError(f"unknown s1K variant {variant!r}; choose one of {sorted(S1K_FIELDS)}")
    trace_field, attempt_field = S1K_FIELDS[variant]
    examples = []
    for i, row in enumerate(rows):
        _require(row, ("question", trace_field, attempt_field), source, i)
        trace = row[trace_field]
        trace = "\n".join(trace) if isinstance(trace, list) else str(trace)
        examples.append({"prompt": row["question"], "answer": format_reasoning(trace, str(row[attempt_field]))})
    return examples


def prompt_answer_examples(
    rows: list[dict], prompt_field: str = "prompt", answer_field: str = "answer", source: str = "data"
) -> list[dict]:
    """Validated `{"prompt", "answer"}` examples from rows holding those two fields."""
    examples = []
    for i, row in enumerate(rows):
        _require(row, (prompt_field, answer_field), source, i)
        answer = row[answer_field]
        if not isinstance(answer, str) or not answer.strip():
            raise DataError(f"{source}: row {i}: field {answer_field!r} is empty")
        examples.append({"prompt": row[prompt_field], "answer": answer})
    return examples


def build_examples(
    dataset: str,
    *,
    split: str = "train",
    subset: str | None = None,
    dataset_format: str = "prompt_answer",
    prompt_field: str = "prompt",
    answer_field: str = "answer",
    max_examples: int | None = None,
    synthetic_examples: int = 20000,
    synthetic_seed: int = 0,
) -> list[dict]:
    """Prompt/answer examples from a local `.jsonl`/`.json` file, a hub dataset or `synthetic:TASK`.

    `dataset_format`: `prompt_answer` (columns `prompt_field`, `answer_field`) or `s1k`. `synthetic:TASK`
    generates `synthetic_examples` training examples with `synthetic_seed`; `max_examples` keeps the first N.
    """
    if dataset.startswith("synthetic:"):
        from rewards.data.synthetic import synthetic_examples as generate

        examples = generate(dataset.partition(":")[2], synthetic_examples, synthetic_seed)
    else:
        rows = load_rows(dataset, split, subset)
        if dataset_format == "s1k":
            examples = s1k_examples(rows, source=dataset)
        else:
            examples = prompt_answer_examples(rows, prompt_field, answer_field, source=dataset)
    return examples[:max_examples] if max_examples else examples


def _require(row: dict, fields: tuple[str, ...], source: str, index: int) -> None:
    missing = [f for f in fields if f not in row or row[f] is None]
    if missing:
        raise DataError(f"{source}: row {index}: missing field(s) {missing}; present: {sorted(row)}")


def prompt_token_ids(
    tokenizer: PreTrainedTokenizerBase, prompt, system_prompt: str | None = None, prefill: str | None = None
) -> list[int]:
    """Chat-formatted prompt ids ending with the assistant generation prompt (then `prefill`, if any).

    `prompt` is a string (one user turn) or a list of `{"role", "content"}` messages. The one place the
    chat template is applied, for training, evaluation and rollouts alike.
    """
    messages = list(prompt) if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
    if system_prompt and messages[0].get("role") != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    # tokenize=False, then tokenize: transformers 5 returns a BatchEncoding for tokenize=True.
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) + (prefill or "")
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_examples(
    examples: list[dict],
    tokenizer: PreTrainedTokenizerBase,
    eos_token_id: int,
    max_length: int,
    system_prompt: str | None = None,
    too_long: str = "error",
    source: str = "data",
) -> list[dict]:
    """`prompt_ids`, `answer_ids` (ending with EOS) and `index` per example.

    An example longer than `max_length` is an error naming its row (`too_long="error"`), or dropped
    (`too_long="drop"`): a silently truncated answer would teach the model to stop mid-answer.
    """
    if too_long not in TOO_LONG:
        raise ValueError(f"unknown too_long {too_long!r}; choose 'error' or 'drop'")
    out = []
    for i, ex in enumerate(examples):
        prompt_ids = prompt_token_ids(tokenizer, ex["prompt"], system_prompt)
        answer_ids = tokenizer(ex["answer"], add_special_tokens=False)["input_ids"] + [eos_token_id]
        total = len(prompt_ids) + len(answer_ids)
        if total > max_length:
            if too_long == "drop":
                continue
            raise DataError(
                f"{source}: row {i}: prompt ({len(prompt_ids)} tokens) + answer ({len(answer_ids)} tokens incl. EOS) "
                f"= {total} > max_length {max_length}; the answer would be truncated away. "
                "Raise max_length or set too_long: drop"
            )
        out.append({"prompt_ids": prompt_ids, "answer_ids": answer_ids, "index": len(out)})
    if not examples:
        raise DataError(f"{source}: no examples (an empty file or split?)")
    if not out:
        raise DataError(f"{source}: no usable examples (all {len(examples)} longer than max_length {max_length}?)")
    return out


@dataclass
class DiffusionCollator:
    """Right-pads with EOS and marks which positions may be noised.

    pad_to: `longest` (in the batch) or `max_length`. train_on_pad_tail: d1 trains on the EOS tail so
    the model learns to fill unused generation slots with EOS; the tail is then attended to and
    eligible for masking, and flagged in `pad_tail_mask` so GIFT can keep it on the SFT schedule.
    """

    pad_token_id: int
    max_length: int
    pad_to: str = "max_length"
    train_on_pad_tail: bool = True

    def __post_init__(self):
        if self.pad_to not in PAD_TO:
            raise ValueError(f"unknown pad_to {self.pad_to!r}; choose 'longest' or 'max_length'")

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        lengths = [len(f["prompt_ids"]) + len(f["answer_ids"]) for f in features]
        width = self.max_length if self.pad_to == "max_length" else max(lengths)
        batch = len(features)
        input_ids = torch.full((batch, width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((batch, width), dtype=torch.long)
        answer = torch.zeros((batch, width), dtype=torch.bool)
        tail = torch.zeros((batch, width), dtype=torch.bool)
        for row, (f, length) in enumerate(zip(features, lengths)):
            start = len(f["prompt_ids"])
            input_ids[row, :length] = torch.tensor(f["prompt_ids"] + f["answer_ids"])
            attention[row, :length] = 1
            answer[row, start:length] = True
            if self.train_on_pad_tail:
                attention[row, length:] = 1
                answer[row, length:] = True
                tail[row, length:] = True
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "answer_mask": answer,
            "pad_tail_mask": tail,
            "index": torch.tensor([f["index"] for f in features], dtype=torch.long),
        }
