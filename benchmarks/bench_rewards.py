"""Time per reward call, per task, on realistic completions (CPU only, no model needed).

Launch:
    .venv/bin/python benchmarks/bench_rewards.py             # 2,000 completions per task
    .venv/bin/python benchmarks/bench_rewards.py --n 500     # quicker

One "call" scores one completion with all of the task's reward functions (what the trainer sums).
Completions mimic model output: a reasoning block, then an answer that is right, partly right, wrong,
unclosed or missing. Prints p50 / p99 / max in milliseconds; the target is p99 < 5 ms for sudoku,
countdown and gsm8k (math runs math-verify and has no target).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from rewards import get_reward_funcs
from rewards.tasks.countdown import countdown_reasoning, generate_countdown
from rewards.tasks.sudoku import generate_sudoku, sudoku_reasoning


def _wrap(rng: random.Random, reasoning: str, answer: str) -> str:
    shape = rng.random()
    if shape < 0.7:
        return f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>"
    if shape < 0.85:
        return f"\n{reasoning}\n</reasoning>\n<answer>\n{answer}"  # prefilled, unclosed
    return reasoning + " " + answer  # no tags


def sudoku_cases(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    cases = []
    for p in generate_sudoku(n, seed=rng.randrange(10**6)):
        answer = list(p["solution"])
        for i in rng.sample(range(16), rng.randint(0, 4)):
            answer[i] = rng.choice("1234")
        text = _wrap(rng, sudoku_reasoning(p["puzzle"], p["solution"]), "".join(answer))
        cases.append((text, {"puzzle": p["puzzle"], "solution": p["solution"]}))
    return cases


def countdown_cases(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    cases = []
    for p in generate_countdown(n, seed=rng.randrange(10**6), num_numbers=3):
        expr = p["solution"] if rng.random() < 0.5 else p["solution"].replace("+", "-", 1)
        text = _wrap(rng, countdown_reasoning(**p), expr)
        cases.append((text, {"numbers": p["numbers"], "target": p["target"]}))
    return cases


_GSM_REASONING = (
    "Natalia sold {a} clips in April and half as many in May, so she sold {a} / 2 = {h} clips in May. "
    "Altogether she sold {a} + {h} = {t} clips in April and May. Each clip costs $2, so the total "
    "is {t} * 2 = ${m}."
)


def gsm8k_cases(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    cases = []
    for _ in range(n):
        a = 2 * rng.randint(5, 500)
        h, t = a // 2, a + a // 2
        m = 2 * t
        answer = rng.choice([f"{m}", f"${m:,}", f"{m} dollars", f"\\boxed{{{m}}}", f"{m + 1}", f"{m}.0"])
        text = _wrap(rng, _GSM_REASONING.format(a=a, h=h, t=t, m=m), answer)
        cases.append((text, {"answer": str(m)}))
    return cases


_MATH_PAIRS = [
    ("\\frac{1}{2}", "0.5"),
    ("\\frac{14}{3}", "\\dfrac{14}{3}"),
    ("3\\sqrt{2}", "\\sqrt{18}"),
    ("x^2+2x+1", "(x+1)^2"),
    ("(3, \\frac{\\pi}{2})", "\\left(3, \\frac{\\pi}{2}\\right)"),
    ("10", "11"),
    ("\\text{Evelyn}", "\\text{Evelyn}"),
    ("-2", "-2"),
    ("\\pi", "3.14"),
]


def math_cases(rng: random.Random, n: int) -> list[tuple[str, dict]]:
    cases = []
    for _ in range(n):
        gold, pred = rng.choice(_MATH_PAIRS)
        reasoning = "We simplify the expression step by step and collect terms. " * rng.randint(1, 6)
        cases.append((_wrap(rng, reasoning, f"\\boxed{{{pred}}}"), {"answer": gold}))
    return cases


CASES = {"sudoku": sudoku_cases, "countdown": countdown_cases, "gsm8k": gsm8k_cases, "math": math_cases}


def bench(task: str, n: int, seed: int) -> list[float]:
    funcs = get_reward_funcs(task)
    cases = CASES[task](random.Random(seed), n)
    for text, truth in cases[:20]:  # warm-up: lazy imports, caches
        for f in funcs:
            f(None, [text], **{k: [v] for k, v in truth.items()})
    times = []
    for text, truth in cases:
        columns = {k: [v] for k, v in truth.items()}
        start = time.perf_counter()
        for f in funcs:
            f(None, [text], **columns)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="completions per task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", nargs="*", default=list(CASES))
    args = parser.parse_args()
    print(f"{'task':<10} {'n':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for task in args.tasks:
        times = sorted(bench(task, args.n, args.seed))
        p50 = statistics.median(times)
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"{task:<10} {len(times):>6} {p50:>8.3f} {p99:>8.3f} {times[-1]:>8.3f}")


if __name__ == "__main__":
    main()
