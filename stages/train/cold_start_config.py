"""Configuration of stage one (`gift cold-start`): HF `TrainingArguments` plus GIFT's fields."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from gift.adapters import DTYPE_NAMES
from gift.data import DATASET_FORMATS, PAD_TO, TOO_LONG
from gift.model_options import model_type_field, torch_dtype_field, trust_remote_code_field
from gift.objective import LOSS_NORMALISERS
from gift.probe import SIGNALS
from gift.schedules import BETA_REFS, BETA_SOURCES, PAD_TAIL_SCHEDULES
from rewards.prompts import resolve_system_prompt
from stages.train.batching import accumulation_field, apply_global_batch, global_batch_field
from stages.train.fsdp_check import refuse_fsdp_on_cpu
from stages.train.lora import lora_field, parse_target_modules
from stages.train.validation import check_config

OBJECTIVES = ("sft", "gift")


@dataclass
class ColdStartConfig(TrainingArguments):
    """Stage-one cold start: masked-diffusion SFT or GIFT, LoRA or full parameters.

    Model:
        model_name_or_path: `embedded[:PRESET]`, a directory written by `gift init-model`, a checkpoint of
            this project, or a hub id (LLaDA/Dream in the official layout load natively: gift.models).
        model_type: a family of `gift.adapters.FAMILIES`; read from config.json when omitted.
        trust_remote_code: run a model's hub code; never on unless asked (LLaDA/Dream refuse it).
    Data:
        dataset: a local `.jsonl`/`.json` file, a hub dataset id, or `synthetic:sudoku` / `synthetic:countdown`.
        dataset_format: `prompt_answer` (fields `prompt_field`, `answer_field`) or `s1k` (s1K / s1K-1.1).
        max_length, pad_to (`max_length`|`longest`), train_on_pad_tail (d1: train on the EOS tail),
        too_long (`error`|`drop`), max_examples, synthetic_examples / synthetic_seed.
        system_prompt: the system turn's text, or the name of one of `rewards.prompts`' texts
            (`format`: the `<reasoning>/<answer>` format instructions), resolved to its text here.
    Objective (docs/algorithms.md §1-2):
        objective: `sft` or `gift`. normaliser: `answer_tokens` (d1), `answer_length` (LLaDA),
            `masked_tokens` (GIFT); default per objective. eps, min_rate (clamp), resample_empty.
        beta_source: `live` (probe every step, the paper; default) or `cached` (probe the starting model
            once per example: the fixed forward process of the theory). beta_from: `entropy` or `nll`.
        beta_refresh_steps: with `live`, probe every k steps and reuse each example's last probed beta in
            between (seeded by a one-off probe of the starting model); 1 is the paper's live GIFT.
        beta_ref: `sequence` (mean beta over the sequence's answer tokens) or `batch`. beta_ref_floor.
        pad_tail_schedule: `sft` (EOS tail keeps t_i = t, out of beta_ref) or `gift`.
        probe_chunk_size: positions per fp32 chunk of the probe's entropy.
    LoRA (peft):
        use_lora, lora_r, lora_alpha, lora_dropout, lora_target_modules (a list; `q_proj,v_proj` on the
        command line).
    Run:
        resume: continue from the last complete checkpoint in output_dir.
        global_batch_size: the invariant of a recipe: gradient_accumulation_steps is derived from it, the
            per-device batch and the number of processes; an impossible split, or an explicit
            gradient_accumulation_steps that differs from the derived one, is an error.
    """

    model_name_or_path: str = field(default="embedded:tiny", metadata={"help": "model source"})
    model_type: str | None = model_type_field()
    trust_remote_code: bool = trust_remote_code_field()
    torch_dtype: str = torch_dtype_field()

    dataset: str = field(default="synthetic:sudoku", metadata={"help": "jsonl/json path, hub id or synthetic:TASK"})
    dataset_subset: str | None = field(default=None, metadata={"help": "hub dataset config name"})
    dataset_split: str = field(default="train", metadata={"help": "hub dataset split"})
    dataset_format: str = field(default="prompt_answer", metadata={"help": " | ".join(DATASET_FORMATS)})
    prompt_field: str = field(default="prompt", metadata={"help": "prompt column"})
    answer_field: str = field(default="answer", metadata={"help": "answer column"})
    system_prompt: str | None = field(
        default=None, metadata={"help": "system message added to every prompt: its text, or a name (format)"}
    )
    max_length: int = field(default=64, metadata={"help": "max tokens of prompt + answer"})
    pad_to: str = field(default="max_length", metadata={"help": " | ".join(PAD_TO)})
    train_on_pad_tail: bool = field(default=True, metadata={"help": "noise and train the EOS padding tail (d1)"})
    too_long: str = field(default="error", metadata={"help": " | ".join(TOO_LONG)})
    max_examples: int | None = field(default=None, metadata={"help": "use at most this many examples"})
    synthetic_examples: int = field(default=20000, metadata={"help": "examples generated for synthetic:TASK"})
    synthetic_seed: int = field(default=0, metadata={"help": "seed of the synthetic task generator"})

    objective: str = field(default="gift", metadata={"help": " | ".join(OBJECTIVES)})
    normaliser: str | None = field(default=None, metadata={"help": " | ".join(LOSS_NORMALISERS)})
    eps: float = field(default=1e-3, metadata={"help": "t = (1-eps) u + eps"})
    min_rate: float = field(default=1e-3, metadata={"help": "lower clamp of t_i"})
    resample_empty: bool = field(default=True, metadata={"help": "redraw a sequence's mask when nothing got masked"})
    beta_source: str = field(default="live", metadata={"help": "live | cached"})
    beta_refresh_steps: int = field(
        default=1, metadata={"help": "live beta: probe every k steps, reuse each example's last beta in between"}
    )
    beta_from: str = field(default="entropy", metadata={"help": " | ".join(SIGNALS)})
    beta_ref: str = field(default="sequence", metadata={"help": " | ".join(BETA_REFS)})
    beta_ref_floor: float = field(default=1e-3, metadata={"help": "beta_ref below this: plain SFT schedule"})
    pad_tail_schedule: str = field(default="sft", metadata={"help": " | ".join(PAD_TAIL_SCHEDULES)})
    probe_chunk_size: int = field(
        default=256,
        metadata={"help": "positions per fp32 entropy chunk (256: 5x less than unchunked at 4k, docs/scaling.md)"},
    )

    use_lora: bool = lora_field("use_lora", False)
    lora_r: int = lora_field("lora_r", 8)
    lora_alpha: int = lora_field("lora_alpha", 16)
    lora_dropout: float = lora_field("lora_dropout", 0.0)
    lora_target_modules: list[str] = lora_field("lora_target_modules", ["q_proj", "k_proj", "v_proj"])

    resume: bool = field(default=False, metadata={"help": "continue from the last complete checkpoint"})
    global_batch_size: int | None = global_batch_field("examples")
    gradient_accumulation_steps: int | None = accumulation_field()

    # HF defaults that suit this project.
    output_dir: str | None = field(default=None, metadata={"help": "run directory"})
    logging_steps: float = field(default=1)
    save_strategy: str = field(default="steps")
    save_steps: float = field(default=100)
    remove_unused_columns: bool = field(default=False)
    dataloader_drop_last: bool = field(default=True)

    # The named choices of its string options, checked by `check_config` (None: unset).
    CHOICES = {
        "objective": OBJECTIVES,
        "normaliser": LOSS_NORMALISERS,
        "dataset_format": DATASET_FORMATS,
        "beta_source": tuple(s for s in BETA_SOURCES if s != "custom"),
        "beta_from": SIGNALS,
        "beta_ref": BETA_REFS,
        "pad_tail_schedule": PAD_TAIL_SCHEDULES,
        "pad_to": PAD_TO,
        "too_long": TOO_LONG,
        "torch_dtype": DTYPE_NAMES,
    }

    def __post_init__(self):
        check_config(self)  # before anything is loaded: choices, steps, rates, sizes, lengths
        self.system_prompt = resolve_system_prompt(self.system_prompt)
        self.lora_target_modules = parse_target_modules(self.lora_target_modules)
        import torch

        if not torch.cuda.is_available():
            self.use_cpu = True  # trl/transformers would otherwise pick bf16/GPU paths
        refuse_fsdp_on_cpu(self)
        apply_global_batch(self)
        super().__post_init__()
