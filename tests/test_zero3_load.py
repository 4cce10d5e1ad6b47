"""`unpartitioned_load`: transformers' ZeRO-3 switch is off inside it and back on after (also after an error).

The 2-process run that needs it (stage two straight from a LoRA run under ZeRO-3) is in tests/test_sharded.py.
"""

from __future__ import annotations

import pytest
from transformers.integrations import HfDeepSpeedConfig, is_deepspeed_zero3_enabled, unset_hf_deepspeed_config

from gift.zero3_load import unpartitioned_load


def test_zero3_is_set_aside_while_loading_and_restored():
    config = HfDeepSpeedConfig({"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": 1})
    try:
        assert is_deepspeed_zero3_enabled()
        with unpartitioned_load():
            assert not is_deepspeed_zero3_enabled()
            with unpartitioned_load():  # nested (an adapter on an adapter's merge): still off
                assert not is_deepspeed_zero3_enabled()
            assert not is_deepspeed_zero3_enabled()
        assert is_deepspeed_zero3_enabled()
        with pytest.raises(RuntimeError), unpartitioned_load():
            raise RuntimeError("a failed load")
        assert is_deepspeed_zero3_enabled()
    finally:
        del config
        unset_hf_deepspeed_config()


def test_without_deepspeed_it_changes_nothing():
    unset_hf_deepspeed_config()
    with unpartitioned_load():
        assert not is_deepspeed_zero3_enabled()
    assert not is_deepspeed_zero3_enabled()
