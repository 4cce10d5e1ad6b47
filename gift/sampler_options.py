"""The sampler's user options, defined once: `SamplerConfig`'s fields, with their command-line help.

`gift eval` adds them to its parser from here, the pipeline's `eval` block accepts the same names, and
stage two declares its rollout fields with `sampler_field` under the same names (`gift rl --steps`).
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, field, fields
from typing import Any

from gift.options import Rule
from gift.sampler import REMASKING, SamplerConfig

# Fields a command sets itself rather than exposing: guidance (no recipe uses it) and the step history.
NOT_OPTIONS = ("cfg_scale", "return_history")
# The options' choices and range rules, as `SamplerConfig` declares them.
CHOICES = {f.name: f.metadata["choices"] for f in fields(SamplerConfig) if "choices" in f.metadata}
HELP = {
    "gen_length": "tokens generated after the prompt; a multiple of block_length",
    "block_length": "tokens per semi-autoregressive block",
    "steps": "denoising steps in total; a multiple of the number of blocks",
    "temperature": "0: greedy; > 0: Gumbel-max sampling of logits / temperature",
    "remasking": "which masked positions a step commits: " + " | ".join(REMASKING),
    "threshold": "parallel decoding: commit every block position above this confidence (Fast-dLLM)",
    "factor": "Fast-dLLM's factor rule instead of threshold",
    "kv_cache": "block KV cache (approximate for bidirectional models; docs/sampler.md)",
    "min_commit": "floor of a parallel step: one token (Fast-dLLM) or the fixed schedule's count",
    "lookahead": "with threshold: also commit confident tokens of the next N blocks (docs/sampler.md)",
    "eos_stop": "stop a sequence once everything before its first EOS is decoded (same text, fewer calls)",
}


def sampler_options() -> tuple[str, ...]:
    """The user-facing sampler options, in `SamplerConfig`'s order."""
    return tuple(f.name for f in fields(SamplerConfig) if f.name not in NOT_OPTIONS)


def sampler_rules() -> dict[str, Rule]:
    """option -> range rule of the numeric sampler options, for the configs that expose them (same names)."""
    return {
        f.name: f.metadata["rule"] for f in fields(SamplerConfig) if "rule" in f.metadata and f.name not in NOT_OPTIONS
    }


def default(name: str):
    """`SamplerConfig`'s default of one option."""
    (found,) = (f for f in fields(SamplerConfig) if f.name == name)
    return found.default if found.default is not MISSING else found.default_factory()


_SAMPLER_DEFAULT = object()


def sampler_field(name: str, value: Any = _SAMPLER_DEFAULT, use: str = "") -> Any:
    """The dataclass field of sampler option `name` for a config that exposes it under the same name: its
    help (after `use`, what the config decodes with it) and `SamplerConfig`'s default unless the command
    publishes another (d1's rollouts: gen_length 256, steps 128)."""
    value = default(name) if value is _SAMPLER_DEFAULT else value
    return field(default=value, metadata={"help": use + HELP[name]})


def add_sampler_arguments(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    """`--NAME` for every sampler option not in `skip`, typed and defaulted as `SamplerConfig` has it."""
    for name in sampler_options():
        if name in skip:
            continue
        value = default(name)
        if isinstance(value, bool):
            parser.add_argument(f"--{name}", action="store_true", help=HELP[name])
        elif name in CHOICES:
            parser.add_argument(f"--{name}", default=value, choices=CHOICES[name], help=HELP[name])
        else:
            kind = int if isinstance(value, int) else float
            parser.add_argument(f"--{name}", type=kind, default=value, help=HELP[name])
