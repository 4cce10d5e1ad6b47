"""Control arms for the embedded Sudoku comparison: a per-token beta set by token class, no entropy.

A calibration run on the embedded Sudoku base found that the probe's entropy mostly separates empty
cells (mean H 0.91 nats) from copied givens (0.10) and the EOS tail (0.03); `gift entropy-report`
measures it per token class (docs/embedded_pipeline_report.md, "What the probe sees"). This control
hands GIFT those classes with fixed betas (sqrt of the typical entropies), so a report can show how
much of GIFT's gain a simple structural rule recovers.
"""

from __future__ import annotations

from typing import Callable

import torch

from rewards.data.synthetic import compact_sudoku_cells

# beta = sqrt(typical entropy in nats) per class, as measured on the embedded Sudoku base (see above).
STRUCTURAL_BETAS = {"empty": 0.91 ** 0.5, "given": 0.10 ** 0.5, "eos": 0.03 ** 0.5, "other": 0.10 ** 0.5}


def sudoku_structural_beta(tokenizer, betas: dict[str, float] | None = None) -> Callable[[dict], torch.Tensor]:
    """A `beta_fn(batch) -> (B, L)` for the compact Sudoku format of `rewards.data.synthetic`.

    The prompt holds the 16 puzzle digits (0 = empty); the answer's `<answer>` tag is followed by the 16
    solution digits (found by `compact_sudoku_cells`, the parser the entropy report uses too). Cells that
    were empty in the puzzle get `empty`, copied givens `given`, EOS tokens `eos`, every other answer
    token (tags) `other`.
    """
    betas = {**STRUCTURAL_BETAS, **(betas or {})}
    digit_of = {tokenizer.convert_tokens_to_ids(str(d)): str(d) for d in range(10)}
    eos = tokenizer.eos_token_id

    def beta_fn(batch: dict) -> torch.Tensor:
        ids, answer = batch["input_ids"], batch["answer_mask"]
        beta = torch.full(ids.shape, betas["other"], dtype=torch.float32, device=ids.device)
        beta[ids == eos] = betas["eos"]
        for row in range(ids.shape[0]):
            tokens, in_answer = ids[row].tolist(), answer[row].tolist()
            puzzle = "".join(digit_of[t] for t, a in zip(tokens, in_answer) if not a and t in digit_of)[:16]
            positions = [i for i, a in enumerate(in_answer) if a]
            try:
                cells = compact_sudoku_cells(puzzle, tokenizer.convert_ids_to_tokens([tokens[i] for i in positions]))
            except ValueError:
                cells = {}
            if not cells:
                raise ValueError(f"batch row {row} is not in the compact Sudoku format (16-digit prompt, <answer> tag)")
            for position, empty in cells.items():
                beta[row, positions[position]] = betas["empty"] if empty else betas["given"]
        return beta * answer

    return beta_fn


CONTROLS = {"sudoku_structural": sudoku_structural_beta}
