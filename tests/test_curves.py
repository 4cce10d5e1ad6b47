"""`gift curves`: the time-weighted EMA, exact CSVs on hand-made metrics files, the PNG, bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from stages.reports.curves import (
    MetricsFileError,
    aggregate_arms,
    aggregate_csv_path,
    aggregate_rows,
    curve_rows,
    main,
    plot_reward_curves,
    read_metrics,
    time_weighted_ema,
)


def write_metrics(run_dir: Path, points: list[tuple[int, float]], **extra) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"step": s, "wall_time": float(s), "reward_mean": v, **extra}) for s, v in points]
    (run_dir / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    return run_dir


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- EMA math


def test_constant_series_stays_constant_and_first_value_unbiased():
    assert time_weighted_ema([1, 2, 5, 9], [0.7] * 4, 0.9) == pytest.approx([0.7] * 4, abs=1e-12)
    assert time_weighted_ema([3, 4], [5.0, 1.0], 0.99)[0] == 5.0  # not pulled toward 0


def test_zero_smoothing_returns_raw_series():
    values = [0.1, 0.9, -0.3, 0.5]
    assert time_weighted_ema([1, 2, 4, 8], values, 0.0) == values


def test_known_values_with_a_gap():
    # Steps 1, 3: the old EMA decays by a**2 at the second point; debiased by the summed weights.
    a = 0.5
    m1, w1 = (1 - a) * 2.0, 1 - a
    m2, w2 = a**2 * m1 + (1 - a**2) * 4.0, a**2 * w1 + (1 - a**2)
    assert time_weighted_ema([1, 3], [2.0, 4.0], a) == pytest.approx([2.0, m2 / w2])
    # A plain per-point EMA would give (a*(1-a)*2 + (1-a)*4) / (1 - a**2), further from the new value.
    assert m2 / w2 > (a * (1 - a) * 2 + (1 - a) * 4) / (1 - a**2)


def test_uneven_logging_smooths_alike():
    def reward(step):  # a smooth learning curve
        return 0.8 * (1 - math.exp(-step / 40)) + 0.05 * math.sin(step / 15)

    every = list(range(1, 201))
    every_2nd = list(range(2, 201, 2))
    dense = time_weighted_ema(every, [reward(s) for s in every], 0.9)
    sparse = time_weighted_ema(every_2nd, [reward(s) for s in every_2nd], 0.9)
    dense_at = {s: v for s, v in zip(every, dense)}
    worst = max(abs(dense_at[s] - v) for s, v in zip(every_2nd, sparse))
    assert worst < 0.02  # about half a step of slope: the sparse run never saw the odd steps
    # Counting points instead of steps would smooth the sparse run over twice as many steps.
    naive = time_weighted_ema(list(range(1, len(every_2nd) + 1)), [reward(s) for s in every_2nd], 0.9)
    assert max(abs(dense_at[s] - v) for s, v in zip(every_2nd, naive)) > 3 * worst


def test_ema_rejects_bad_arguments():
    with pytest.raises(ValueError, match="smoothing"):
        time_weighted_ema([1], [1.0], 1.0)
    with pytest.raises(ValueError, match="increasing"):
        time_weighted_ema([1, 1], [1.0, 2.0], 0.5)
    with pytest.raises(ValueError, match="values"):
        time_weighted_ema([1, 2], [1.0], 0.5)


# --------------------------------------------------------------------------- CSV and PNG


def test_csv_content_exact(tmp_path):
    run = write_metrics(tmp_path / "gift", [(1, 0.25), (2, 0.5), (4, 1.0)], kl=0.0)
    png, csv_path = plot_reward_curves([("GIFT", run)], tmp_path / "out" / "reward.png", smoothing=0.5)
    assert csv_path == tmp_path / "out" / "reward.csv"
    # a = 0.5: step 1 -> 0.25; step 2: m = .5*.125 + .5*.5 = .3125, w = .75 -> 5/12;
    # step 4 (gap 2): m = .25*.3125 + .75*1 = .828125, w = .25*.75 + .75 = .9375 -> 53/60.
    expected = [("1", 0.25, 0.25), ("2", 0.5, 5 / 12), ("4", 1.0, 53 / 60)]
    rows = read_csv(csv_path)
    assert list(rows[0]) == ["label", "run", "step", "raw", "smoothed"]
    assert [(r["label"], r["run"]) for r in rows] == [("GIFT", str(run))] * 3
    for row, (step, raw, smooth) in zip(rows, expected):
        assert row["step"] == step and float(row["raw"]) == raw
        assert float(row["smoothed"]) == pytest.approx(smooth, abs=1e-15)
    agg = read_csv(aggregate_csv_path(png))
    assert [(r["label"], r["n_runs"], r["step"]) for r in agg] == [
        ("GIFT", "1", "1"),
        ("GIFT", "1", "2"),
        ("GIFT", "1", "4"),
    ]
    assert all(r["mean"] == r["low"] == r["high"] == s["smoothed"] for r, s in zip(agg, rows))


def test_seeds_sharing_a_label_are_aggregated(tmp_path):
    a = write_metrics(tmp_path / "s0", [(1, 0.0), (2, 0.0), (3, 0.0)])
    b = write_metrics(tmp_path / "s1", [(1, 1.0), (3, 1.0)])  # logged every 2nd step
    c = write_metrics(tmp_path / "sft", [(1, 0.5), (2, 0.5)])
    png, csv_path = plot_reward_curves([("GIFT", a), ("GIFT", b), ("SFT", c)], tmp_path / "r.png", band="std")
    rows = read_csv(csv_path)
    assert [r["run"] for r in rows] == [str(a)] * 3 + [str(b)] * 2 + [str(c)] * 2
    agg = read_csv(aggregate_csv_path(png))
    gift = [r for r in agg if r["label"] == "GIFT"]
    assert [(r["step"], float(r["mean"])) for r in gift] == [("1", 0.5), ("2", 0.5), ("3", 0.5)]  # b interpolated at 2
    sd = math.sqrt(0.5)  # sample sd of {0, 1}
    assert float(gift[0]["low"]) == pytest.approx(0.5 - sd) and float(gift[0]["high"]) == pytest.approx(0.5 + sd)
    assert {r["band"] for r in agg} == {"std"}
    assert [r["n_runs"] for r in agg if r["label"] == "SFT"] == ["1", "1"]


def test_png_written_and_loads(tmp_path):
    import matplotlib.image

    runs = [("GIFT", write_metrics(tmp_path / f"g{i}", [(s, 0.1 * s + i) for s in range(1, 30)])) for i in range(2)]
    runs.append(("SFT", write_metrics(tmp_path / "sft", [(s, 0.05 * s) for s in range(1, 30, 3)])))
    png, _ = plot_reward_curves(runs, tmp_path / "fig.png", title="GIFT vs SFT")
    assert png.stat().st_size > 10_000
    image = matplotlib.image.imread(png)
    assert image.ndim == 3 and image.shape[0] > 300 and image.shape[1] > 500


def test_cli_default_labels_and_metric(tmp_path, capsys):
    run = write_metrics(tmp_path / "my-run", [(1, 0.1), (2, 0.2)], **{"reward/sudoku_reward": 0.3})
    png, csv_path = main(
        [str(run), "--metric", "reward/sudoku_reward", "--smoothing", "0", "--output", str(tmp_path / "c.png")]
    )
    rows = read_csv(csv_path)
    assert {r["label"] for r in rows} == {"my-run"} and [r["smoothed"] for r in rows] == ["0.3", "0.3"]
    assert png.is_file() and "wrote" in capsys.readouterr().out


# --------------------------------------------------------------------------- bad input


def test_label_count_must_match(tmp_path, capsys):
    a = write_metrics(tmp_path / "a", [(1, 0.1)])
    b = write_metrics(tmp_path / "b", [(1, 0.1)])
    with pytest.raises(SystemExit) as info:
        main([str(a), str(b), "--label", "only-one", "--output", str(tmp_path / "x.png")])
    assert info.value.code == 2 and "--label given 1 time(s) for 2 run dir(s)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([str(a), "--smoothing", "1.0", "--output", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()


def test_broken_line_names_file_and_line(tmp_path):
    run = write_metrics(tmp_path / "run", [(1, 0.1), (2, 0.2)])
    with open(run / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 3, "reward_mean": 0.\n')
        handle.write(json.dumps({"step": 4, "reward_mean": 0.4}) + "\n")
    with pytest.raises(MetricsFileError, match=r"run/metrics.jsonl:3: not valid JSON"):
        read_metrics(run)
    with pytest.raises(SystemExit, match=r"metrics.jsonl:3"):
        main([str(run), "--output", str(tmp_path / "x.png")])
    assert not (tmp_path / "x.png").exists()
    warned = []
    assert [r["step"] for r in read_metrics(run, skip_bad=True, warn=warned.append)] == [1, 2, 4]
    assert len(warned) == 1 and "metrics.jsonl:3" in warned[0]


def test_missing_empty_and_incomplete_runs(tmp_path, capsys):
    good = write_metrics(tmp_path / "good", [(1, 0.1), (2, 0.2)])
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "metrics.jsonl").write_text("\n")
    with pytest.raises(MetricsFileError, match="no such metrics file"):
        read_metrics(tmp_path / "nowhere")
    with pytest.raises(MetricsFileError, match=r"empty/metrics.jsonl: no metrics lines"):
        read_metrics(empty)
    no_step = write_metrics(tmp_path / "nostep", [])
    (no_step / "metrics.jsonl").write_text('{"reward_mean": 1}\n')
    with pytest.raises(MetricsFileError, match=r"nostep/metrics.jsonl:1: no integer 'step'"):
        read_metrics(no_step)
    no_metric = write_metrics(tmp_path / "nometric", [(1, 0.1)])
    with pytest.raises(MetricsFileError, match="step 1: 'reward_std' is missing"):
        plot_reward_curves([("x", no_metric)], tmp_path / "m.png", metric="reward_std")
    # --skip_bad: the unreadable runs are skipped with a warning, the good one is plotted.
    png, csv_path = main(
        [str(good), str(empty), str(tmp_path / "nowhere"), "--skip_bad", "--output", str(tmp_path / "ok.png")]
    )
    assert {r["run"] for r in read_csv(csv_path)} == {str(good)}
    err = capsys.readouterr().err
    assert "skipped run" in err and "empty/metrics.jsonl" in err and "nowhere" in err
    with pytest.raises(SystemExit, match="no readable runs"):
        main([str(empty), "--skip_bad", "--output", str(tmp_path / "none.png")])


def test_arms_group_seeds_in_first_seen_order_and_format_their_rows():
    curves = [
        {"label": "B", "run": "b0", "steps": [1, 2], "raw": [0.0, 1.0], "smoothed": [0.0, 0.5]},
        {"label": "A", "run": "a0", "steps": [1, 2], "raw": [1.0, 1.0], "smoothed": [1.0, 1.0]},
        {"label": "B", "run": "b1", "steps": [2, 3], "raw": [0.5, 0.25], "smoothed": [0.25, 0.75]},
    ]
    arms = aggregate_arms(curves, "minmax")
    assert list(arms) == ["B", "A"] and [c["run"] for c in arms["B"]["runs"]] == ["b0", "b1"]
    # B's seeds overlap on step 2 only: b0 is 0.5 there, b1 0.25.
    assert (arms["B"]["steps"], arms["B"]["mean"], arms["B"]["low"], arms["B"]["high"]) == ([2], [0.375], [0.25], [0.5])
    assert aggregate_rows(arms, "minmax") == [
        ["B", 2, 2, "0.375", "0.25", "0.5", "minmax"],
        ["A", 1, 1, "1.0", "1.0", "1.0", "minmax"],
        ["A", 1, 2, "1.0", "1.0", "1.0", "minmax"],
    ]
    assert curve_rows(curves[:1]) == [["B", "b0", 1, "0.0", "0.0"], ["B", "b0", 2, "1.0", "0.5"]]
