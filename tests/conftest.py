"""Shared fixtures: tiny embedded models and data files built by the tests themselves (no downloads)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gift.adapters import adapter_for
from gift.embedded_model import build_embedded_model, init_model


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """The tiny models gain nothing from a second thread, and two threads spin badly on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny():
    """(model, tokenizer, adapter) of a freshly initialised tiny embedded model."""
    model, tokenizer = build_embedded_model("tiny", seed=0)
    return model, tokenizer, adapter_for("embedded", tokenizer)


@pytest.fixture(scope="session")
def base_dir(tmp_path_factory) -> Path:
    """A `gift init-model` directory shared by the session (read-only use)."""
    return init_model(tmp_path_factory.mktemp("base") / "base", "tiny", seed=0)
