"""Every recipe under configs/ parses into its config class, offline, and its numbers add up.

- stage-one recipes: `stages.train.cold_start.make_parser()` (TrlParser; unknown keys are errors);
- stage-two recipes (`grpo_*`/`rl_*` names or GRPO-only keys): `stages.train.rl.make_parser()`;
- pipeline files (`pipeline:`/`arms:` keys): `gift pipeline`'s validation builds every stage's config;
- the LLaDA/Dream s1K bases (`s1k_lora`/`s1k_full` per model), with each override their header names
  (SFT, the Base model), resolve to the paper's settings, and every launch line in their header gives a
  global batch of 16 (per-device x derived accumulation x processes, processes from the accelerate config);
- `lora_target_modules` takes one form in both stages; `system_prompt` may name a prompt builder's text;
- configs/accelerate/*.yaml load as accelerate's own `ClusterConfig` and use only launcher options.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from rewards.prompts import resolve_system_prompt
from stages.recipes import load_recipe, materialize
from stages.train.batching import global_batch, resolve_batch
from stages.train.cold_start_config import ColdStartConfig

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
ACCELERATE = CONFIGS / "accelerate"
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if ACCELERATE not in p.parents)
SCALE_RECIPES = [p for p in RECIPES if p.parent.name in ("llada", "dream") and p.stem.startswith("s1k_")]
ACCELERATE_CONFIGS = sorted(ACCELERATE.glob("*.yaml"))
PIPELINE_KEYS = {"pipeline", "arms"}
GRPO_KEYS = {"num_generations", "num_iterations", "p_mask_prompt", "reward_funcs", "steps", "gen_length"}
GLOBAL_BATCH = 16


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def _kind(path: Path, data: dict) -> str:
    if PIPELINE_KEYS & set(data):
        return "pipeline"
    if path.name.startswith(("grpo", "rl_")) or GRPO_KEYS & set(data):
        return "rl"
    return "cold_start"


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_there_are_recipes():
    assert [_rel(p) for p in SCALE_RECIPES] == [
        f"configs/{family}/s1k_{params}.yaml" for family in ("dream", "llada") for params in ("full", "lora")
    ]
    assert len(ACCELERATE_CONFIGS) >= 6


@pytest.mark.parametrize("path", RECIPES, ids=_rel)
def test_recipe_parses_into_its_config(path, tmp_path):
    data = load_recipe(path)  # a recipe naming a `base` is checked merged
    assert isinstance(data, dict), f"{_rel(path)}: a recipe is a YAML mapping"
    kind = _kind(path, data)
    if kind == "pipeline":  # every stage's config of every arm is built, nothing runs
        from stages.pipeline import Pipeline
        from stages.pipeline_config import load_pipeline_config

        Pipeline(load_pipeline_config(path, {"output_dir": str(tmp_path / "o")})).validate()
        return
    module = importlib.import_module(f"stages.train.{kind}")
    (config,) = module.make_parser().parse_args_and_config(
        ["--config", materialize(_rel(path)), "--output_dir", str(tmp_path / "o")]
    )
    if kind == "cold_start":
        assert isinstance(config, ColdStartConfig)
        fields = {f.name for f in dataclasses.fields(ColdStartConfig)}
        assert set(data) <= fields, sorted(set(data) - fields)
    for key, value in data.items():
        if key == "system_prompt":  # a recipe may name a text instead of pasting it
            value = resolve_system_prompt(value)
        assert getattr(config, key) == value or key in ("report_to",), (key, value, getattr(config, key))


# What the LLaDA/Dream s1K recipes resolve to, pinned. Until the per-variant files (gift_/sft_/base_*_s1k_*)
# were replaced by these bases and overrides, a test resolved old and new field by field and found them equal.
FORMAT_TEXT = "Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
S1K_COMMON = dict(  # the paper's settings, and d1's SFT script's where the paper is silent
    trust_remote_code=False,
    torch_dtype="bfloat16",
    bf16=True,
    dataset="simplescaling/s1K",
    dataset_format="s1k",
    max_length=4096,
    pad_to="max_length",
    train_on_pad_tail=True,
    too_long="drop",
    system_prompt=FORMAT_TEXT,
    objective="gift",
    normaliser=None,
    beta_source="live",
    beta_from="entropy",
    beta_ref="sequence",
    pad_tail_schedule="sft",
    probe_chunk_size=256,
    learning_rate=1e-5,
    lr_scheduler_type="linear",
    warmup_steps=0,
    weight_decay=0.1,
    max_grad_norm=1.0,
    per_device_train_batch_size=1,
    global_batch_size=GLOBAL_BATCH,
    gradient_accumulation_steps=GLOBAL_BATCH,
    num_train_epochs=20,
    ddp_find_unused_parameters=False,
    logging_steps=2,
    save_steps=100,
    seed=42,
)  # accumulation as derived on one process
S1K_PARAMS = {
    "lora": dict(
        use_lora=True,
        lora_r=128,
        lora_alpha=256,
        lora_dropout=0.05,
        lora_target_modules=["q_proj", "k_proj", "v_proj"],
        save_total_limit=None,
    ),
    "full": dict(use_lora=False, save_total_limit=3),
}
S1K_MODELS = {
    "llada": dict(
        model_name_or_path="GSAI-ML/LLaDA-8B-Instruct",
        model_type="llada",
        activation_checkpointing=True,
        activation_checkpointing_kwargs={"use_reentrant": False},
    ),
    "dream": dict(
        model_name_or_path="Dream-org/Dream-v0-Instruct-7B",
        model_type="dream",
        activation_checkpointing=True,
        activation_checkpointing_kwargs={"use_reentrant": False},
    ),
}
BASE_MODELS = {"llada": "GSAI-ML/LLaDA-8B-Base", "dream": "Dream-org/Dream-v0-Base-7B"}


@pytest.mark.parametrize("variant", ["gift", "sft", "base-model"])
@pytest.mark.parametrize("path", SCALE_RECIPES, ids=_rel)
def test_scale_recipe_resolves_to_the_papers_settings(path, variant, tmp_path, monkeypatch):
    """Each base with each documented override (SFT, the Base model) resolves to the pinned settings."""
    family, params = path.parent.name, path.stem.removeprefix("s1k_")
    overrides = {
        "gift": [],
        "sft": ["--objective", "sft"],
        "base-model": ["--model_name_or_path", BASE_MODELS[family]],
    }[variant]
    assert " ".join(overrides) in path.read_text(), "the header names each override"
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    config = _parse("cold_start", ["--config", _rel(path), *overrides], tmp_path)
    expected = {**S1K_COMMON, **S1K_PARAMS[params], **S1K_MODELS[family]}
    expected.update(
        {"gift": {}, "sft": {"objective": "sft"}, "base-model": {"model_name_or_path": BASE_MODELS[family]}}[variant]
    )
    got = {key: getattr(config, key) for key in expected}
    assert got == expected, {k: (got[k], v) for k, v in expected.items() if got[k] != v}


def _launch_lines(path: Path) -> list[list[str]]:
    """The `accelerate launch ...` commands of a recipe's opening comment, continuation lines joined."""
    header = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        header.append(line.lstrip("#").strip())
    text = re.sub(r"\\\s*\n\s*", " ", "\n".join(header))
    commands = []
    for line in text.splitlines():
        if "accelerate launch" in line:
            commands.append(shlex.split(line[line.index("accelerate launch") :]))
    return commands


def _option(tokens: list[str], name: str) -> str | None:
    return tokens[tokens.index(name) + 1] if name in tokens else None


@pytest.mark.parametrize("path", SCALE_RECIPES, ids=_rel)
def test_launch_lines_give_the_global_batch(path):
    """1 GPU and 8 GPUs, each: the recipe's global batch 16 = per-device x derived accumulation x processes.
    No line passes an accumulation: the global batch derives it, whatever the command line says."""
    assert path.read_text().startswith("#"), "a recipe opens with its launch commands"
    data = load_recipe(path)
    assert data["global_batch_size"] == GLOBAL_BATCH and "gradient_accumulation_steps" not in data
    commands = _launch_lines(path)
    processes_seen = set()
    for tokens in commands:
        launcher, script = tokens[: tokens.index("-m")], tokens[tokens.index("-m") :]
        assert script[1] == "stages.train.cold_start" and _option(script, "--config") == _rel(path)
        assert "--gradient_accumulation_steps" not in script, tokens
        accelerate_file = ROOT / _option(launcher, "--config_file")
        assert accelerate_file.is_file(), accelerate_file
        processes = int(
            _option(launcher, "--num_processes") or yaml.safe_load(accelerate_file.read_text())["num_processes"]
        )
        per_device = int(_option(script, "--per_device_train_batch_size") or data["per_device_train_batch_size"])
        per_device, accumulation = resolve_batch(data["global_batch_size"], processes, per_device=per_device)
        assert global_batch(per_device, accumulation, processes) == GLOBAL_BATCH, (tokens, per_device, accumulation)
        processes_seen.add(processes)
    assert processes_seen == {1, 8}, commands


def _launch_options() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {o.lstrip("-") for action in launch_command_parser()._actions for o in action.option_strings}


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=_rel)
def test_accelerate_config_loads(path):
    from accelerate.commands.config.config_args import ClusterConfig

    data = yaml.safe_load(path.read_text())
    for key in (
        "compute_environment",
        "distributed_type",
        "num_processes",
        "num_machines",
        "machine_rank",
        "mixed_precision",
    ):
        assert key in data, key
    config = ClusterConfig.from_yaml_file(str(path))  # accelerate's own loader: unknown keys are errors
    assert config.num_processes % config.num_machines == 0
    assert config.mixed_precision == "bf16"
    options = _launch_options()
    for section in ("deepspeed_config", "fsdp_config"):
        unknown = set(data.get(section) or {}) - options
        assert not unknown, f"{section} keys accelerate launch does not know: {sorted(unknown)}"
    if data["distributed_type"] == "DEEPSPEED":
        ds = data["deepspeed_config"]
        assert f"zero{ds['zero_stage']}" == path.stem
        # left out so DeepSpeed takes them from the recipe ("auto") and the two cannot disagree
        assert "gradient_accumulation_steps" not in ds and "gradient_clipping" not in ds
    if data["num_machines"] > 1:
        assert data.get("main_process_ip") and data.get("main_process_port")


def test_accelerate_config_set():
    expected = {"single": (1, 1), "ddp": (8, 1), "zero2": (8, 1), "zero3": (8, 1), "fsdp": (8, 1), "multinode": (16, 2)}
    found = {p.stem: yaml.safe_load(p.read_text()) for p in ACCELERATE_CONFIGS}
    for name, (processes, machines) in expected.items():
        assert (found[name]["num_processes"], found[name]["num_machines"]) == (processes, machines), name


def _parse(stage: str, argv: list[str], tmp_path):
    from stages.config_args import parse_config

    module = importlib.import_module(f"stages.train.{stage}")
    return parse_config(module.make_parser(), ["--output_dir", str(tmp_path / "o"), *argv])


@pytest.mark.parametrize("stage", ["cold_start", "rl"])
@pytest.mark.parametrize(
    "given, expected, peft_targets",
    [
        (["--lora_target_modules", "q_proj,v_proj"], ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
        (["--lora_target_modules", "q_proj", "v_proj"], ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
        (["--lora_target_modules", "all-linear"], ["all-linear"], "all-linear"),
        ("[q_proj, v_proj]", ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
        ("q_proj, v_proj", ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
        ("[all-linear]", ["all-linear"], "all-linear"),
    ],
    ids=["cli-comma", "cli-words", "cli-all-linear", "yaml-list", "yaml-comma", "yaml-all-linear"],
)
def test_lora_target_modules_take_one_form_in_both_stages(stage, given, expected, peft_targets, tmp_path):
    from stages.train.lora import lora_config

    if isinstance(given, str):  # a recipe line
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"lora_target_modules: {given}\n")
        given = ["--config", str(recipe)]
    config = _parse(stage, given, tmp_path)
    assert config.lora_target_modules == expected
    assert lora_config(config).target_modules == peft_targets  # peft keeps names as a set, all-linear as is


@pytest.mark.parametrize(
    "value, message",
    [
        ("all-linear,q_proj", r"lora_target_modules: all-linear stands alone, got \['all-linear', 'q_proj'\]"),
        (",", r"lora_target_modules names no module \(got \[','\]\)"),
    ],
)
def test_lora_target_modules_mistakes_are_named(value, message, tmp_path):
    from stages.config_args import UsageError

    for stage in ("cold_start", "rl"):
        with pytest.raises(UsageError, match=message):
            _parse(stage, ["--lora_target_modules", value], tmp_path)


def test_system_prompt_may_name_the_prompt_builders_text(tmp_path):
    from stages.config_args import UsageError

    expected = "Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
    assert _parse("cold_start", ["--system_prompt", "format"], tmp_path).system_prompt == expected
    assert _parse("cold_start", ["--system_prompt", "Answer briefly."], tmp_path).system_prompt == "Answer briefly."
    assert _parse("cold_start", [], tmp_path).system_prompt is None
    with pytest.raises(UsageError, match=r"system_prompt 'fromat' is neither a named prompt \(format\) nor a sentence"):
        _parse("cold_start", ["--system_prompt", "fromat"], tmp_path)
