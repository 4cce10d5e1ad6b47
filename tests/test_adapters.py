"""Model adapters and the embedded model."""

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from gift.adapters import LLADA_MASK_ID, ModelAdapter, ModelLoadError, adapter_for, load_pretrained, read_model_type
from stages.cli import main as gift_main


def test_init_model_loads_with_auto_classes_and_is_bidirectional(tmp_path):
    gift_main(["init-model", "--output_dir", str(tmp_path / "m")])
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "m").eval()
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert tokenizer.mask_token_id is not None and tokenizer.eos_token_id == tokenizer.pad_token_id
    assert 5e5 <= sum(p.numel() for p in model.parameters()) <= 1e6
    x = torch.randint(10, len(tokenizer), (1, 10))
    y = x.clone()
    y[0, -1] = (y[0, -1] + 1) % len(tokenizer)
    with torch.no_grad():
        assert not torch.allclose(model(x).logits[0, 0], model(y).logits[0, 0])  # position 0 sees the last token


def test_llada_adapter_constants(tiny):
    _, tokenizer, _ = tiny
    llada = adapter_for("llada", tokenizer)
    assert llada.mask_token_id == LLADA_MASK_ID == 126336 and not llada.shift_logits


def test_dream_adapter_shifts_logits_and_passes_the_2d_mask_with_positions():
    class Fake(torch.nn.Module):
        def forward(self, input_ids, attention_mask=None, position_ids=None):
            self.mask = attention_mask
            # "logit" at position i is one-hot of token i+1: a shifted model
            nxt = torch.roll(input_ids, -1, dims=1)
            return type("O", (), {"logits": torch.nn.functional.one_hot(nxt, 10).float()})

    dream = ModelAdapter("dream", mask_token_id=9, eos_token_id=0, pad_token_id=0, shift_logits=True)
    fake = Fake()
    ids = torch.tensor([[0, 3, 4, 5]])
    logits = dream.logits(fake, ids, torch.tensor([[0, 1, 1, 1]]))
    assert logits[0, 1:].argmax(-1).tolist() == [3, 4, 5]  # aligned: position i scores token i
    assert fake.mask.tolist() == [[0, 1, 1, 1]]


def test_tokenizer_without_mask_token_is_an_error(tiny):
    _, tokenizer, _ = tiny
    tokenizer.mask_token = None
    with pytest.raises(ModelLoadError, match="no mask token"):
        adapter_for("embedded", tokenizer)


def test_unknown_model_types(tmp_path):
    (tmp_path / "gpt2").mkdir()
    (tmp_path / "gpt2" / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ModelLoadError, match="'gpt2' is not a known masked-diffusion model"):
        read_model_type(str(tmp_path / "gpt2"))
    (tmp_path / "causal").mkdir()
    (tmp_path / "causal" / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ModelLoadError, match="not a known masked-diffusion"):
        read_model_type(str(tmp_path / "causal"))
    (tmp_path / "llada").mkdir()
    (tmp_path / "llada" / "config.json").write_text(json.dumps({"model_type": "llada"}))
    assert read_model_type(str(tmp_path / "llada")) == "llada"
    with pytest.raises(ModelLoadError, match="drop trust_remote_code"):
        load_pretrained(str(tmp_path / "llada"), trust_remote_code=True)
    with pytest.raises(ModelLoadError, match="unknown model_type 'bert'"):
        adapter_for("bert", None)
    with pytest.raises(ModelLoadError, match="no config.json"):
        read_model_type(str(tmp_path))
