"""Every recipe under configs/ parses into its config class, offline, and its numbers add up.

- stage-one recipes: `stages.train.cold_start.make_parser()` (TrlParser; unknown keys are errors);
- stage-two recipes (`grpo_*`/`rl_*` names or GRPO-only keys): `stages.train.rl.make_parser()`;
- pipeline files (`pipeline:`/`arms:` keys): `gift pipeline`'s validation builds every stage's config;
- the LLaDA/Dream recipes carry the paper's settings, and every launch line in their header gives a
  global batch of 16 (per-device x accumulation x processes, processes from the accelerate config);
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
from stages.train.batching import global_batch, resolve_batch
from stages.train.cold_start_config import ColdStartConfig
from stages.train.recipes import load_recipe, materialize

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
ACCELERATE = CONFIGS / "accelerate"
RECIPES = sorted(p for p in CONFIGS.rglob("*.yaml") if ACCELERATE not in p.parents)
SCALE_RECIPES = [p for p in RECIPES if p.parent.name in ("llada", "dream") and "_s1k_" in p.name]
ACCELERATE_CONFIGS = sorted(ACCELERATE.glob("*.yaml"))
PIPELINE_KEYS = {"pipeline", "arms"}
GRPO_KEYS = {"num_generations", "num_iterations", "p_mask_prompt", "reward_funcs", "diffusion_steps", "gen_length"}
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
    assert len(SCALE_RECIPES) >= 16 and len(ACCELERATE_CONFIGS) >= 6


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
    (config,) = module.make_parser().parse_args_and_config(["--config", materialize(_rel(path)),
                                                            "--output_dir", str(tmp_path / "o")])
    if kind == "cold_start":
        assert isinstance(config, ColdStartConfig)
        fields = {f.name for f in dataclasses.fields(ColdStartConfig)}
        assert set(data) <= fields, sorted(set(data) - fields)
    for key, value in data.items():
        if key == "system_prompt":  # a recipe may name a text instead of pasting it
            value = resolve_system_prompt(value)
        assert getattr(config, key) == value or key in ("report_to",), (key, value, getattr(config, key))


@pytest.mark.parametrize("path", SCALE_RECIPES, ids=_rel)
def test_scale_recipe_has_the_papers_settings(path):
    data = yaml.safe_load(path.read_text())
    family, stem = path.parent.name, path.stem
    assert data["model_type"] == family and data["trust_remote_code"] is True
    model = data["model_name_or_path"]
    assert ("Base" in model) == stem.startswith("base_"), model
    assert ("Instruct" in model) != stem.startswith("base_"), model
    assert data["objective"] == stem.removeprefix("base_").split("_")[0]
    assert data["dataset"] == "simplescaling/s1K" and data["dataset_format"] == "s1k"
    assert data["learning_rate"] == 1e-5 and data["max_length"] == 4096 and data["num_train_epochs"] == 20
    assert data["bf16"] is True and data["torch_dtype"] == "bfloat16"
    assert global_batch(data["per_device_train_batch_size"], data["gradient_accumulation_steps"], 8) == GLOBAL_BATCH
    if stem.endswith("_lora"):
        assert data["use_lora"] is True
        assert (data["lora_r"], data["lora_alpha"], data["lora_dropout"]) == (128, 256, 0.05)
        assert data["lora_target_modules"] == ["q_proj", "k_proj", "v_proj"]
    else:
        assert stem.endswith("_full") and data["use_lora"] is False
    if data["objective"] == "gift":
        assert data["beta_source"] == "live" and data["beta_from"] == "entropy"


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
            commands.append(shlex.split(line[line.index("accelerate launch"):]))
    return commands


def _option(tokens: list[str], name: str) -> str | None:
    return tokens[tokens.index(name) + 1] if name in tokens else None


@pytest.mark.parametrize("path", SCALE_RECIPES, ids=_rel)
def test_launch_lines_give_the_global_batch(path):
    """1 GPU and 8 GPUs, each: per-device x accumulation (recipe or override) x processes == 16."""
    assert path.read_text().startswith("#"), "a recipe opens with its launch commands"
    data = yaml.safe_load(path.read_text())
    commands = _launch_lines(path)
    processes_seen = set()
    for tokens in commands:
        launcher, script = tokens[: tokens.index("-m")], tokens[tokens.index("-m") :]
        assert script[1] == "stages.train.cold_start" and _option(script, "--config") == _rel(path)
        accelerate_file = ROOT / _option(launcher, "--config_file")
        assert accelerate_file.is_file(), accelerate_file
        processes = int(_option(launcher, "--num_processes") or yaml.safe_load(accelerate_file.read_text())["num_processes"])
        per_device = int(_option(script, "--per_device_train_batch_size") or data["per_device_train_batch_size"])
        accumulation = int(_option(script, "--gradient_accumulation_steps") or data["gradient_accumulation_steps"])
        assert global_batch(per_device, accumulation, processes) == GLOBAL_BATCH, (tokens, per_device, accumulation, processes)
        processes_seen.add(processes)
    assert processes_seen == {1, 8}, commands


def _launch_options() -> set[str]:
    from accelerate.commands.launch import launch_command_parser

    return {o.lstrip("-") for action in launch_command_parser()._actions for o in action.option_strings}


@pytest.mark.parametrize("path", ACCELERATE_CONFIGS, ids=_rel)
def test_accelerate_config_loads(path):
    from accelerate.commands.config.config_args import ClusterConfig

    data = yaml.safe_load(path.read_text())
    for key in ("compute_environment", "distributed_type", "num_processes", "num_machines", "machine_rank",
                "mixed_precision"):
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


# Old stage-one recipe -> (new recipe, command-line overrides that stand for it).
_BASE_MODEL = {"llada": "GSAI-ML/LLaDA-8B-Base", "dream": "Dream-org/Dream-v0-Base-7B"}
MIGRATION = {
    f"{family}/{variant}{objective}_s1k_{params}.yaml": (
        f"{family}/s1k_{params}.yaml",
        (["--objective", "sft"] if objective == "sft" else [])
        + (["--model_name_or_path", _BASE_MODEL[family]] if variant else []))
    for family in ("llada", "dream") for variant in ("", "base_") for objective in ("gift", "sft")
    for params in ("lora", "full")
}


def _resolved(path: str, extra: list[str], tmp_path) -> dict:
    from stages.cli import parse_config
    from stages.train.cold_start import make_parser

    config = parse_config(make_parser(), ["--config", str(CONFIGS / path), "--output_dir", str(tmp_path / "o"), *extra])
    return config.to_dict()


@pytest.mark.parametrize("old", sorted(MIGRATION))
def test_new_recipes_resolve_to_the_old_settings(old, tmp_path, monkeypatch):
    """On 1 process (the old launch line added accumulation 16) every resolved field is the same; on 8, the
    old file's accumulation 2 is what the new global batch derives."""
    new, overrides = MIGRATION[old]
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    before = _resolved(old, ["--gradient_accumulation_steps", "16"], tmp_path)
    after = _resolved(new, overrides, tmp_path)
    assert after.pop("global_batch_size") == GLOBAL_BATCH and before.pop("global_batch_size") is None
    differ = {k: (before[k], after.get(k)) for k in before if before[k] != after.get(k)}
    assert not differ and set(after) == set(before), differ
    old_file = yaml.safe_load((CONFIGS / old).read_text())
    assert resolve_batch(GLOBAL_BATCH, 8, per_device=after["per_device_train_batch_size"]) == \
        (old_file["per_device_train_batch_size"], old_file["gradient_accumulation_steps"])


def _parse(stage: str, argv: list[str], tmp_path):
    from stages.cli import parse_config

    module = importlib.import_module(f"stages.train.{stage}")
    return parse_config(module.make_parser(), ["--output_dir", str(tmp_path / "o"), *argv])


@pytest.mark.parametrize("stage", ["cold_start", "rl"])
@pytest.mark.parametrize("given, expected, peft_targets", [
    (["--lora_target_modules", "q_proj,v_proj"], ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
    (["--lora_target_modules", "q_proj", "v_proj"], ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
    (["--lora_target_modules", "all-linear"], ["all-linear"], "all-linear"),
    ("[q_proj, v_proj]", ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
    ("q_proj, v_proj", ["q_proj", "v_proj"], {"q_proj", "v_proj"}),
    ("[all-linear]", ["all-linear"], "all-linear"),
], ids=["cli-comma", "cli-words", "cli-all-linear", "yaml-list", "yaml-comma", "yaml-all-linear"])
def test_lora_target_modules_take_one_form_in_both_stages(stage, given, expected, peft_targets, tmp_path):
    from stages.train.lora import lora_config

    if isinstance(given, str):  # a recipe line
        recipe = tmp_path / "r.yaml"
        recipe.write_text(f"lora_target_modules: {given}\n")
        given = ["--config", str(recipe)]
    config = _parse(stage, given, tmp_path)
    assert config.lora_target_modules == expected
    assert lora_config(config).target_modules == peft_targets  # peft keeps names as a set, all-linear as is


@pytest.mark.parametrize("value, message", [
    ("all-linear,q_proj", r"lora_target_modules: all-linear stands alone, got \['all-linear', 'q_proj'\]"),
    (",", r"lora_target_modules names no module \(got \[','\]\)"),
])
def test_lora_target_modules_mistakes_are_named(value, message, tmp_path):
    from stages.cli import UsageError

    for stage in ("cold_start", "rl"):
        with pytest.raises(UsageError, match=message):
            _parse(stage, ["--lora_target_modules", value], tmp_path)


def test_system_prompt_may_name_the_prompt_builders_text(tmp_path):
    from stages.cli import UsageError

    expected = "Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
    assert _parse("cold_start", ["--system_prompt", "format"], tmp_path).system_prompt == expected
    assert _parse("cold_start", ["--system_prompt", "Answer briefly."], tmp_path).system_prompt == "Answer briefly."
    assert _parse("cold_start", [], tmp_path).system_prompt is None
    with pytest.raises(UsageError, match=r"system_prompt 'fromat' is neither a named prompt \(format\) nor a sentence"):
        _parse("cold_start", ["--system_prompt", "fromat"], tmp_path)
