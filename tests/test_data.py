"""Stage-one data: loading, validation errors, tokenisation, collation."""

import pytest
from helpers import write_jsonl

from gift.data import DataError, DiffusionCollator, load_rows, prompt_answer_examples, s1k_examples, tokenize_examples


def test_jsonl_round_trip_and_broken_line(tmp_path):
    good = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a", "answer": "b"}])
    assert load_rows(str(good)) == [{"prompt": "a", "answer": "b"}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "answer": "b"}\n{"prompt": \n')
    with pytest.raises(DataError, match=r"bad.jsonl:2"):
        load_rows(str(bad))
    with pytest.raises(DataError, match="no such data file"):
        load_rows(str(tmp_path / "missing.jsonl"))


def test_missing_field_names_row_and_field():
    with pytest.raises(DataError, match=r"row 1: missing field\(s\) \['answer'\]"):
        prompt_answer_examples([{"prompt": "a", "answer": "b"}, {"prompt": "c"}], source="x.jsonl")
    with pytest.raises(DataError, match=r"row 0: missing field\(s\) \['question_text'\]"):
        prompt_answer_examples([{"prompt": "a", "answer": "b"}], prompt_field="question_text")


def test_empty_answer_is_an_error():
    with pytest.raises(DataError, match=r"row 0: field 'answer' is empty"):
        prompt_answer_examples([{"prompt": "a", "answer": "  "}])


def test_s1k_variants_become_reasoning_answer():
    v1 = [{"question": "Q?", "thinking_trajectories": ["step 1", "step 2"], "attempt": "42", "solution": "42"}]
    v11 = [{"question": "Q?", "deepseek_thinking_trajectory": "think", "deepseek_attempt": "7"}]
    assert s1k_examples(v1) == [
        {"prompt": "Q?", "answer": "<reasoning>\nstep 1\nstep 2\n</reasoning>\n<answer>\n42\n</answer>"}
    ]
    assert s1k_examples(v11)[0]["answer"] == "<reasoning>\nthink\n</reasoning>\n<answer>\n7\n</answer>"
    with pytest.raises(DataError, match="row 0: missing field"):
        s1k_examples([{"question": "Q?", "attempt": "1"}], variant="s1K")


def test_tokenize_prompt_answer_and_too_long(tiny):
    _, tokenizer, adapter = tiny
    examples = [{"prompt": "12", "answer": "<answer>3</answer>"}]
    (feat,) = tokenize_examples(examples, tokenizer, adapter.eos_token_id, 32)
    assert tokenizer.decode(feat["prompt_ids"]) == "<|user|>12<|assistant|>"
    assert feat["answer_ids"][-1] == adapter.eos_token_id
    assert tokenizer.decode(feat["answer_ids"][:-1]) == "<answer>3</answer>"
    assert len(feat["answer_ids"]) == 4  # tags are single tokens
    with pytest.raises(
        DataError, match=r"row 0: prompt \(4 tokens\) \+ answer \(4 tokens incl. EOS\) = 8 > max_length 6"
    ):
        tokenize_examples(examples, tokenizer, adapter.eos_token_id, 6, source="s.jsonl")
    kept = tokenize_examples(
        examples + [{"prompt": "1", "answer": "2"}], tokenizer, adapter.eos_token_id, 6, too_long="drop"
    )
    assert len(kept) == 1 and kept[0]["index"] == 0


def test_system_prompt_and_chat_messages(tiny):
    _, tokenizer, adapter = tiny
    chat = [{"prompt": [{"role": "user", "content": "hi"}], "answer": "x"}]
    (feat,) = tokenize_examples(chat, tokenizer, adapter.eos_token_id, 64, system_prompt="S")
    assert tokenizer.decode(feat["prompt_ids"]) == "<|system|>S<|user|>hi<|assistant|>"


def test_collator_marks_answer_and_pad_tail():
    feats = [
        {"prompt_ids": [5, 6], "answer_ids": [7, 0], "index": 0},
        {"prompt_ids": [5], "answer_ids": [8, 9, 0], "index": 1},
    ]
    d1 = DiffusionCollator(pad_token_id=0, max_length=6, pad_to="max_length", train_on_pad_tail=True)(feats)
    assert d1["input_ids"].tolist() == [[5, 6, 7, 0, 0, 0], [5, 8, 9, 0, 0, 0]]
    assert d1["answer_mask"].tolist() == [[False, False, True, True, True, True], [False, True, True, True, True, True]]
    assert d1["pad_tail_mask"].tolist() == [
        [False, False, False, False, True, True],
        [False, False, False, False, True, True],
    ]
    assert d1["attention_mask"].all()
    plain = DiffusionCollator(pad_token_id=0, max_length=6, pad_to="longest", train_on_pad_tail=False)(feats)
    assert plain["input_ids"].shape == (2, 4)
    assert plain["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert not plain["pad_tail_mask"].any()
    short = DiffusionCollator(0, 6, "longest", False)([feats[0]])
    assert short["input_ids"].shape == (1, 4)
    with pytest.raises(ValueError, match="pad_to"):
        DiffusionCollator(0, 6, pad_to="shortest")
