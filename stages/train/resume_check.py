"""A resumed checkpoint's weights are checked like any loaded model's (`gift.weights_check`): HF's trainer
reads `checkpoint-N/model.safetensors` itself, non-strictly, and only logs what did not fit.

The tied `lm_head.weight` of the embedded model is stored once (as the embedding): no gap, no line.
"""

from __future__ import annotations

import re

from gift.weights_check import WeightsError, refuse_key_mismatch, refuse_nonfinite, weights_file


class CheckedResume:
    """Mixin for an HF `Trainer`: refuse a resumed checkpoint's missing, unexpected, wrong-shaped or
    non-finite tensor in one line naming the file and tensor."""

    _resume_dir: str | None = None

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        self._resume_dir = resume_from_checkpoint
        try:
            super()._load_from_checkpoint(resume_from_checkpoint, model)
        except RuntimeError as err:  # torch's load_state_dict: "size mismatch for KEY: ..." without the file
            found = re.search(r"size mismatch for ([\w.]+): (.*)", str(err))
            if not found:
                raise
            raise WeightsError(
                f"{weights_file(resume_from_checkpoint, found.group(1))}: tensor {found.group(1)} has "
                f"the wrong shape ({found.group(2).strip().rstrip('.')})"
            ) from err
        refuse_nonfinite(resume_from_checkpoint, model if model is not None else self.model)

    def _issue_warnings_after_load(self, load_result) -> None:
        refuse_key_mismatch(
            self._resume_dir or self.args.output_dir, self.model, load_result.missing_keys, load_result.unexpected_keys
        )
