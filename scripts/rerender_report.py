"""Re-render a published pipeline report (docs/*_report.md) from its committed results file, so the report
states the verdicts the way the README does (paired intervals) without rerunning the job.

    python scripts/rerender_report.py docs/results/embedded_controls.json docs/embedded_controls_report.md \
        --config configs/embedded/pipeline_controls.yaml

The accuracy, reward, cost and entropy tables come from the results file (a schema-1 file is upgraded: its
intervals are computed from its per-seed values); the resolved config block is kept from the report itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stages.pipeline_config import load_pipeline_config  # noqa: E402
from stages.reports.report import format_report  # noqa: E402
from stages.reports.verdicts import upgrade  # noqa: E402


def rerender(results_path: Path, report_path: Path, config: Path) -> str:
    results = upgrade(json.loads(results_path.read_text()))
    old = report_path.read_text()
    if "```yaml\n" not in old:
        raise ValueError(f"{report_path}: no resolved config block to keep")
    config_yaml = old.split("```yaml\n", 1)[1].rsplit("```", 1)[0]
    figure = next(
        (line.split("](", 1)[1].rstrip(")") for line in old.splitlines() if line.startswith("![reward curves](")), None
    )
    rewards = {label: [r["last20"] for r in runs] for label, runs in results.get("rl", {}).items()}
    state = {"steps": {name: {"seconds": seconds} for name, seconds in results["wall_time"]["steps"].items()}}
    entropy = {"classes": results["entropy_classes"]} if results.get("entropy_classes") else None
    cfg = load_pipeline_config(config)
    text = format_report(results, cfg, rewards, Path(figure) if figure else None, state, entropy, config_yaml)
    return text.replace(f"]({Path(figure).name})", f"]({figure})") if figure else text  # keep the figure's folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("report", type=Path)
    parser.add_argument("--config", type=Path, required=True, help="the pipeline config that produced the results")
    args = parser.parse_args(argv)
    args.report.write_text(rerender(args.results, args.report, args.config))
    print(f"{args.report}: re-rendered from {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
