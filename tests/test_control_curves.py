"""The stage-two figure with frozen controls: runs read per generation batch, the gain batch by batch."""

import csv
import json

import matplotlib.image
import pytest

from stages.reports.control_curves import batch_series, plot_stage_two
from stages.run_record import FrozenControl, StageTwoRun


def _metrics(path, rewards):
    path.mkdir(parents=True)
    (path / "metrics.jsonl").write_text(
        "".join(json.dumps({"step": i + 1, "reward_mean": r}) + "\n" for i, r in enumerate(rewards))
    )


def _pair(tmp_path, name, seed, trained, control, mu=2):
    _metrics(tmp_path / name, trained)
    _metrics(tmp_path / f"{name}-frozen", control)
    return StageTwoRun(
        "sft",
        "sft",
        None,
        seed,
        str(tmp_path / name),
        "start",
        len(trained),
        mu,
        FrozenControl(str(tmp_path / f"{name}-frozen"), len(control)),
    )


def test_a_run_is_read_per_generation_batch_against_its_control(tmp_path):
    # mu 2: steps 1-2 trained on batch 1, 3-4 on batch 2, 5-6 on batch 3; the control logs one line per batch.
    run = _pair(tmp_path, "a", 0, [0.5, 0.5, 0.625, 0.625, 0.75, 0.75], [0.5, 0.5, 0.5])
    series = batch_series(run)
    assert series["run"] == ([2, 4, 6], [0.5, 0.625, 0.75])
    assert series["control"] == ([2, 4, 6], [0.5, 0.5, 0.5])
    assert series["gain"] == ([2, 4, 6], [0.0, 0.125, 0.25])


def test_the_figure_and_csv_hold_each_seed_its_control_and_the_gain(tmp_path):
    runs = [
        _pair(tmp_path, "a", 0, [0.5, 0.5, 0.75, 0.75], [0.5, 0.25]),
        _pair(tmp_path, "b", 1, [0.25, 0.25, 0.5, 0.5], [0.25, 0.5]),
    ]
    png = plot_stage_two(runs, tmp_path / "out" / "reward_curves.png", smoothing=0.0, title="t")
    assert matplotlib.image.imread(png).shape[1] > matplotlib.image.imread(png).shape[0]  # two panels side by side
    with open(png.with_suffix(".csv")) as handle:
        rows = list(csv.DictReader(handle))
    gains = {(r["seed"], r["step"]): float(r["raw"]) for r in rows if r["series"] == "gain"}
    assert gains == {("0", "2"): 0.0, ("0", "4"): 0.5, ("1", "2"): 0.0, ("1", "4"): 0.0}
    assert all(r["raw"] == r["smoothed"] for r in rows)  # smoothing 0: the EMA is the raw series


def test_without_controls_the_figure_is_the_plain_reward_curves(tmp_path):
    _metrics(tmp_path / "a", [0.5, 0.75])
    run = StageTwoRun("sft", "sft", None, 0, str(tmp_path / "a"), "start", 2, 2)
    png = plot_stage_two([run], tmp_path / "r.png", smoothing=0.5)
    assert png.is_file() and (tmp_path / "r_aggregate.csv").is_file()


def test_a_missing_control_file_is_named(tmp_path):
    run = _pair(tmp_path, "a", 0, [0.5, 0.5], [0.5])
    (tmp_path / "a-frozen" / "metrics.jsonl").unlink()
    with pytest.raises(ValueError, match="a-frozen/metrics.jsonl: no such metrics file"):
        plot_stage_two([run], tmp_path / "r.png")
