"""The model a command runs on, defined once: its source, its family (`model_type`) and whether its hub
code may run (`trust_remote_code`). Commands keep their own name for the source (`--model`,
`model_name_or_path`, `base_model`); the three options mean the same everywhere.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from gift.adapters import KINDS

SOURCE_HELP = "embedded[:PRESET], a checkpoint or run directory, or a local/hub model of a known type"
MODEL_TYPE_HELP = f"{' | '.join(KINDS)} (read from config.json when omitted)"
TRUST_REMOTE_CODE_HELP = "run the model's hub code (LLaDA, Dream); never on unless asked"


@dataclass(frozen=True)
class ModelSource:
    """source: what `gift.checkpoint.load_model` reads; model_type: the family, None to read it from the
    model's config; trust_remote_code: allow the hub's modeling code."""

    source: str
    model_type: str | None = None
    trust_remote_code: bool = False

    def options(self) -> dict[str, Any]:
        """`model_type` and `trust_remote_code` as a stage config's fields spell them."""
        return {"model_type": self.model_type, "trust_remote_code": self.trust_remote_code}

    def load(self, dtype: str | None = None, **options: Any):
        """`gift.checkpoint.load_model` of this source (`options`: its other keywords)."""
        from gift.checkpoint import load_model

        return load_model(self.source, self.model_type, self.trust_remote_code, dtype, **options)


def add_model_arguments(parser: argparse.ArgumentParser, source_help: str = SOURCE_HELP) -> None:
    """`--model` (required), `--model_type` and `--trust_remote_code`."""
    parser.add_argument("--model", required=True, help=source_help)
    parser.add_argument("--model_type", default=None, choices=KINDS, help=MODEL_TYPE_HELP)
    parser.add_argument("--trust_remote_code", action="store_true", help=TRUST_REMOTE_CODE_HELP)


def model_type_field() -> Any:
    """The `model_type` field of a stage config (HfArgumentParser reads its help)."""
    return field(default=None, metadata={"help": MODEL_TYPE_HELP})


def trust_remote_code_field() -> Any:
    """The `trust_remote_code` field of a stage config."""
    return field(default=False, metadata={"help": TRUST_REMOTE_CODE_HELP})


def torch_dtype_field() -> Any:
    """The `torch_dtype` field of a stage config: the weights' dtype by name."""
    from gift.adapters import DTYPE_NAMES

    return field(default="float32", metadata={"help": f"{' | '.join(DTYPE_NAMES)} (weights dtype)"})
