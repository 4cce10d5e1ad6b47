"""The README's "Step by step" runs as written, top to bottom, in a fresh folder (with small step counts
appended to the training lines; `gift convert` of a hub model is left out: no network here)."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from stages.cli import main as gift

REPO = Path(__file__).resolve().parents[1]
SMALL = {
    "cold-start": [
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        "--synthetic_examples",
        "32",
        "--per_device_train_batch_size",
        "8",
    ],
    "rl": [
        "--max_steps",
        "2",
        "--save_steps",
        "2",
        "--max_prompts",
        "8",
        "--per_device_train_batch_size",
        "8",
        "--num_generations",
        "4",
        "--num_iterations",
        "1",
    ],
}


def step_by_step() -> list[list[str]]:
    """The README's step-by-step commands, comments removed."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Step by step\n\n```bash\n(.*?)```", text, re.S).group(1)
    return [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]


def test_every_run_a_line_reads_is_made_by_an_earlier_line():
    made: set[str] = set()
    for argv in step_by_step():
        for option in ("--model", "--checkpoint"):
            if option in argv and argv[0] == "gift" and argv[1] != "convert":
                assert argv[argv.index(option) + 1] in made, f"{' '.join(argv)}: reads a run no earlier line makes"
        if argv[1] == "curves":
            runs = [a for a in argv[2:] if not a.startswith("--") and a.startswith("runs/")]
            assert set(runs) <= made, f"{' '.join(argv)}: reads a run no earlier line makes"
        if "--output_dir" in argv:
            made.add(argv[argv.index("--output_dir") + 1])


@pytest.mark.slow
def test_the_step_by_step_runs_as_written(tmp_path, monkeypatch):
    shutil.copytree(REPO / "configs", tmp_path / "configs")
    monkeypatch.chdir(tmp_path)
    for argv in step_by_step():
        assert argv[0] == "gift"
        if argv[1] == "convert" and not Path(argv[argv.index("--model") + 1]).exists():
            continue  # a hub model: needs the network
        assert gift(argv[1:] + SMALL.get(argv[1], [])) == 0, " ".join(argv)
    assert (tmp_path / "curves.png").is_file() and (tmp_path / "runs/lora-merged/gift_manifest.json").is_file()
