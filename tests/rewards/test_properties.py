"""Property tests: random and adversarial completions never raise, stay in range, finish quickly.

Thousands of completions in total across the four tasks; a few megabyte-sized inputs on top.
"""

import os
import tempfile
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rewards import TASKS, get_metric, get_reward_funcs

# Executing any of the code-like fragments would create this file.
_SENTINEL = os.path.join(tempfile.gettempdir(), f"rewards-sentinel-{os.getpid()}")
_CODE = f"__import__('os').system('touch {_SENTINEL}')"

FRAGMENTS = [
    "<answer>",
    "</answer>",
    "<reasoning>",
    "</reasoning>",
    "\\boxed{",
    "\\boxed ",
    "\\fbox{",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    "\\{",
    "\\}",
    "\\frac{1}{2}",
    "\\dfrac12",
    "\\frac{",
    "1,234",
    "-",
    "+",
    "*",
    "/",
    "**",
    "^",
    "^{",
    "!",
    "=",
    "$",
    ".",
    ",",
    " ",
    "\n",
    "\t",
    "18",
    "0",
    "3",
    "5",
    "7",
    "22",
    "99999",
    "1324423121433412",
    "0304003120033400",
    "9**9**9",
    "9^{9^{9}}",
    "(" * 60,
    ")" * 60,
    "{" * 60,
    "eggs",
    "\u2212",
    "\u00d7",
    "\u0663",
    "\u00e9",
    "\x00",
    "\ud7ff",
    "\\text{",
    "\\left(",
    "\\right)",
    "x",
    "\\sqrt{2}",
    "\\pi",
    "1e10",
    "nan",
    "inf",
    "1/0",
    "0/0",
    "100000!",
    _CODE,
    "exec('x')",
    "lambda: 0",
    "import os",
]

completion_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=st.sampled_from(list("0123456789+-*/().{}\\^$<>=, \nabnrswx!")), max_size=200),
    st.lists(st.sampled_from(FRAGMENTS), max_size=40).map("".join),
    st.tuples(st.text(max_size=50), st.lists(st.sampled_from(FRAGMENTS), max_size=10).map("".join)).map(
        lambda t: f"<reasoning>{t[0]}</reasoning>\n<answer>{t[1]}</answer>"
    ),
)
# trl passes strings or lists of chat messages
completion = st.one_of(completion_text, completion_text.map(lambda s: [{"role": "assistant", "content": s}]))

GROUND_TRUTH = {
    "sudoku": {"puzzle": "0304003120033400", "solution": "1324423121433412"},
    "countdown": {"numbers": [3, 5, 7], "target": 22},
    "gsm8k": {"answer": "18"},
    "math": {"answer": "\\frac{1}{2}"},
}
# Seconds per call, a hang guard (catastrophic backtracking, unbounded parsing), not a speed target: ten times
# what a call takes on a loaded 2-core machine (math may use math-verify's own 1 s timeouts, parse + compare).
# Speed is measured in benchmarks/bench_rewards.py.
TIME_BOUND = {"sudoku": 10.0, "countdown": 10.0, "gsm8k": 10.0, "math": 20.0}
EXAMPLES = {"sudoku": 1500, "countdown": 1500, "gsm8k": 1500, "math": 400}


def _check(task, texts):
    truth = GROUND_TRUTH[task]
    columns = {k: [v] * len(texts) for k, v in truth.items()}
    high = TASKS[task].max_reward
    total = [0.0] * len(texts)
    for func in get_reward_funcs(task):
        start = time.perf_counter()
        values = func(None, texts, **columns)
        elapsed = time.perf_counter() - start
        assert elapsed < TIME_BOUND[task] * len(texts), (func.__name__, elapsed)
        assert len(values) == len(texts)
        for i, v in enumerate(values):
            assert isinstance(v, float) and 0.0 <= v <= high, (func.__name__, v)
            total[i] += v
    assert all(0.0 <= t <= high for t in total)
    metric = get_metric(task)(texts, **columns)
    assert 0.0 <= metric["accuracy"] <= 1.0 and metric["n"] == len(texts)


def _property(task):
    @settings(max_examples=EXAMPLES[task], deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(completion)
    def run(text):
        _check(task, [text])

    return run


@pytest.mark.parametrize("task", sorted(GROUND_TRUTH))
def test_random_and_adversarial_completions(task):
    _property(task)()
    assert not os.path.exists(_SENTINEL), "model text was executed"


HUGE = {
    "1 MB of digits": "7" * 1_000_000,
    "1 MB answer block": "<answer>" + "1,2" * 333_333 + "</answer>",
    "many open tags": "<answer><reasoning>" * 50_000,
    "many boxes": "\\boxed{" * 100_000,
    "nested parentheses": "<answer>" + "(" * 100_000 + "3*5+7" + ")" * 100_000 + "</answer>",
    "nested braces": "<answer>\\boxed{" + "{" * 100_000 + "1" + "}" * 100_000 + "}</answer>",
    "thousands separators": "<answer>" + "1" + ",111" * 200_000 + "</answer>",
    "unicode": "<answer>" + "\u0663\u00e9\U0001f600" * 100_000 + "</answer>",
    "power tower": "<answer>\\boxed{" + "9^{" * 200 + "9" + "}" * 200 + "}</answer>",
    "code": f"<answer>{_CODE}</answer>",
}


@pytest.mark.parametrize("task", sorted(GROUND_TRUTH))
@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_inputs(task, name):
    _check(task, [HUGE[name]])
    assert not os.path.exists(_SENTINEL)


@pytest.mark.parametrize("task", sorted(GROUND_TRUTH))
def test_empty_batch(task):
    for func in get_reward_funcs(task):
        assert func(None, [], **{k: [] for k in GROUND_TRUTH[task]}) == []
