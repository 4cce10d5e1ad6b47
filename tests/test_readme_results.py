"""The README's embedded results are generated from the committed results file, never typed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stages.reports.readme_results import (
    END,
    RESULTS,
    START,
    current_section,
    load_results,
    main,
    render_section,
    replace_section,
)
from stages.reports.report import frozen_gain, reward_rise

ROOT = Path(__file__).resolve().parent.parent


def test_readme_numbers_match_the_committed_results_file():
    readme = (ROOT / "README.md").read_text()
    expected = render_section(load_results(ROOT / RESULTS))
    assert current_section(readme) == expected, (
        "README differs from docs/results/embedded_main.json: run `gift render-readme`"
    )


def _results(gift_cells=(0.9, 0.92, 0.91), sft_cells=(0.85, 0.86, 0.84)) -> dict:
    stats = lambda v: {"values": list(v), "mean": sum(v) / len(v), "sd": 0.01, "n": len(v), "seeds": [0, 1, 2]}  # noqa: E731
    return {
        "metrics": ["cell_accuracy", "solved"],
        "seeds": [0, 1, 2],
        "arms": ["sft", "gift"],
        "pretrain_steps": 250,
        "stage_one_steps": 300,
        "stage_two_steps": 60,
        "rl_from_step": 100,
        "workers": 2,
        "wall_time": {"steps": {}, "total_s": 1200.4, "elapsed_s": 640.0},
        "accuracy": {
            "base": {"cell_accuracy": 0.571, "solved": 0.05},
            "stage1": {
                "gift": {"cell_accuracy": stats(gift_cells), "solved": stats((0.5, 0.5, 0.5))},
                "sft": {"cell_accuracy": stats(sft_cells), "solved": stats((0.4, 0.4, 0.4))},
            },
        },
        "step_time": {"gift": {"median_s": 0.26, "vs_sft": 1.3}, "sft": {"median_s": 0.2, "vs_sft": 1.0}},
        "rl": {"gift": [{"seed": s, "first10": 0.5, "last20": 0.6, "rise": 0.1, "steps": 60} for s in (0, 1, 2)]},
    }  # schema 1 (no intervals): render_section computes them from the per-seed values


def test_render_section_holds_the_numbers_of_the_file():
    text = render_section(_results())
    assert text.startswith(START) and text.endswith(END)
    assert "| base (stage zero) | - | 57.1 | 5.0 | |" in text
    assert "| stage one: `gift` | 3 | 91.0 ± 1.0 | 50.0 ± 1.0 | 1.30 |" in text
    assert "| `gift` | 3 | 50.0 ± 0.0 | 60.0 ± 0.0 | 10.0 ± 0.0 | +10.0 |" in text
    # diffs 5, 6, 7: mean 6, sd 1, t_2 = 4.303 -> 6 +/- 2.48; p(t = 10.39, 2 df) = 0.0091; sign-flip 2/8
    assert (
        "| stage1 cell_accuracy (gift - sft) | 3 | +5.0, +6.0, +7.0 | +6.0 [+3.5, +8.5] | 0.009 | 0.250 | 0.009 "
        "| `gift` ahead |"
    ) in text
    assert "stage1 cell_accuracy, gift ahead: +6.0 [+3.5, +8.5]" in text
    changed = _results(gift_cells=(0.9, 0.84, 0.91))  # diffs 5, -2, 7: every seed no longer the same sign
    assert "stage1 cell_accuracy, no difference shown: +3.3 [-8.4, +15.1]" in render_section(changed)
    same_sign = _results(gift_cells=(0.851, 0.92, 0.842))  # all positive, but the interval holds 0: no claim
    assert "stage1 cell_accuracy, no difference shown: +2.1 [-6.3, +10.5]" in render_section(same_sign)
    assert "Machine: not recorded" in text
    assert "1200 s of training and evaluation, 640 s wall clock with 2 worker process(es)" in text


def test_a_changed_number_makes_the_check_fail(tmp_path):
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results()))
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\n## Embedded results\n\n{START}\nold\n{END}\n\n## Next\nkept\n")
    assert main(["--results", str(results), "--readme", str(readme), "--check"]) == 1
    assert main(["--results", str(results), "--readme", str(readme)]) == 0
    text = readme.read_text()
    assert text.startswith("# title\n\n## Embedded results\n\n") and text.endswith(f"{END}\n\n## Next\nkept\n")
    assert main(["--results", str(results), "--readme", str(readme), "--check"]) == 0
    changed = _results(gift_cells=(0.9, 0.92, 0.95))
    results.write_text(json.dumps(changed))
    assert main(["--results", str(results), "--readme", str(readme), "--check"]) == 1


def test_markers_must_be_present_once_and_in_order():
    with pytest.raises(ValueError, match="README.md: expected one"):
        replace_section("no markers", "x")
    with pytest.raises(ValueError, match="expected one"):
        replace_section(f"{END}\n{START}\n", "x")
    assert replace_section(f"a\n{START}\nb\n{END}\nc", "NEW") == "a\nNEW\nc"


def test_a_file_that_is_not_a_results_file_is_named(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"x.json: not a pipeline results file"):
        load_results(bad)
    with pytest.raises(FileNotFoundError, match="no results file"):
        load_results(tmp_path / "missing.json")


def test_reward_rise():
    rise = reward_rise([0.1] * 10 + [0.5] * 10)  # first 10% = 2 steps, last 20% = 4 steps
    assert rise == {"first10": 0.1, "last20": 0.5, "rise": pytest.approx(0.4), "steps": 20}
    assert reward_rise([]) is None


def test_publish_run_copies_results_report_and_figure(tmp_path):
    from stages.reports.readme_results import FIGURE, REPORT, publish_run
    from stages.runs.folder import mark_folder

    run = tmp_path / "run"
    mark_folder(run, "pipeline")
    (run / "results.json").write_text(json.dumps(_results()))
    (run / "report.md").write_text("# Pipeline report\n\n![reward curves](reward_curves.png)\n")
    (run / "reward_curves.png").write_bytes(b"png")
    stale = tmp_path / FIGURE.with_name(FIGURE.stem + "_aggregate.csv")  # the figure with controls writes none
    stale.parent.mkdir(parents=True)
    stale.write_text("from an earlier run")
    publish_run(run, tmp_path)
    assert not stale.exists()
    assert json.loads((tmp_path / RESULTS).read_text()) == _results()
    assert (tmp_path / REPORT).read_text() == "# Pipeline report\n\n![reward curves](img/embedded_reward_curves.png)\n"
    assert (tmp_path / FIGURE).read_bytes() == b"png"
    (run / "report.md").unlink()
    with pytest.raises(FileNotFoundError, match="report.md: missing"):
        publish_run(run, tmp_path)
    assert (tmp_path / REPORT).is_file() and (tmp_path / FIGURE).is_file()  # the refused run removed nothing


def test_publish_run_refuses_a_folder_that_is_not_a_pipeline_run(tmp_path):
    from stages.reports.readme_results import FIGURE, publish_run

    published = tmp_path / FIGURE.with_name(FIGURE.stem + "_aggregate.csv")
    published.parent.mkdir(parents=True)
    published.write_text("published earlier")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "results.json").write_text(json.dumps(_results()))
    (foreign / "report.md").write_text("# someone else's report\n")
    with pytest.raises(ValueError, match="not a `gift pipeline` run folder"):
        publish_run(foreign, tmp_path)
    assert published.read_text() == "published earlier"
    (foreign / "pipeline_state.json").write_text("{}")  # a pipeline folder from before the marker
    (foreign / "results.json").write_text("{}")
    with pytest.raises(ValueError, match="not a pipeline results file"):
        publish_run(foreign, tmp_path)
    assert published.read_text() == "published earlier"


def test_frozen_gain_reads_the_same_generation_batches():
    # 20 steps with 2 steps per generation batch: the control has one step per batch, 10 in all.
    trained = [0.5] * 10 + [0.8] * 10
    control = [0.4, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 0.7]
    got = frozen_gain(trained, control, 2)
    # first 10% = 2 steps = batch 0; last 20% = 4 steps = batches 8 and 9
    assert got == pytest.approx({"frozen_first10": 0.4, "frozen_last20": 0.7, "frozen_rise": 0.3, "gain": 0.1})
    assert frozen_gain(trained, control[:3], 2) is None  # the control did not see every batch of the run
    assert frozen_gain(trained, control, 4) is None  # nor more batches than the run drew
    assert frozen_gain(trained, [], 2) is None


def test_render_section_gives_the_gain_over_the_frozen_control():
    results = _results()
    for run, gain in zip(results["rl"]["gift"], (0.02, 0.04, 0.06)):
        run.update({"frozen_first10": 0.5, "frozen_last20": 0.6 - gain, "frozen_rise": 0.1 - gain, "gain": gain})

    def metric(values):
        return {"values": values, "mean": sum(values) / 3, "sd": 0.1, "n": 3, "seeds": [0, 1, 2]}

    results["accuracy"]["rl_start"] = {"gift": {"cell_accuracy": metric([0.5, 0.6, 0.7]), "solved": metric([0.1] * 3)}}
    results["accuracy"]["stage2"] = {"gift": {"cell_accuracy": metric([0.52, 0.63, 0.74]), "solved": metric([0.1] * 3)}}
    text = render_section(results)
    # gains 2, 4, 6 (x100): mean 4, sd 2, t_2 * 2 / sqrt(3) = 4.97; held-out change 2, 3, 4: 3 +/- 2.48
    assert "| `gift` | +4.0 [-1.0, +9.0] | no change shown | +3.0 [+0.5, +5.5] | rises |" in text
    assert "gain over frozen control" not in render_section(_results())  # no control, no table


def test_the_published_reports_state_the_verdicts_of_their_results_files():
    from scripts.rerender_report import rerender

    controls = ROOT / "configs" / "embedded" / "pipeline_controls.yaml"
    for results, report in (
        ("docs/results/embedded_controls.json", "docs/embedded_controls_report.md"),
        ("docs/results/embedded_main.json", "docs/embedded_pipeline_report.md"),
    ):
        if json.loads((ROOT / results).read_text()).get("config") != "configs/embedded/pipeline_controls.yaml":
            continue  # a report published by `gift render-readme --run` from a later run is the run's own
        assert rerender(ROOT / results, ROOT / report, controls) == (ROOT / report).read_text(), report
