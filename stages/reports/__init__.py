"""Reports: reward curves, the probe's entropy report, the pipeline report and the README results section."""
