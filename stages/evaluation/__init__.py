"""Evaluation under the d1 protocol: generation (`gift eval`) and scoring (`gift score`)."""
