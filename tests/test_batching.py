"""Global batch as the invariant (`stages.train.batching`)."""

import doctest
import itertools

import pytest

import stages.train.batching as batching
from stages.train.batching import BatchSizeError, global_batch, resolve_batch


@pytest.mark.parametrize(
    "processes,per_device,accumulation,expected",
    [
        (8, 1, None, (1, 2)),  # the LLaDA recipes on 8 GPUs
        (1, 1, None, (1, 16)),  # the same recipe on 1 GPU
        (16, 1, None, (1, 1)),  # 2 nodes x 8 GPUs
        (8, None, 1, (2, 1)),
        (2, None, 4, (2, 4)),
        (4, 2, 2, (2, 2)),  # both given and consistent: unchanged
        (8, None, None, (1, 2)),  # neither: per-device 1
    ],
)
def test_resolves_the_missing_number(processes, per_device, accumulation, expected):
    assert resolve_batch(16, processes, per_device, accumulation) == expected
    assert global_batch(*expected, processes) == 16


def test_every_whole_split_round_trips():
    for total, processes in itertools.product(range(1, 65), (1, 2, 3, 4, 8, 16)):
        for per_device in range(1, total + 1):
            if total % (per_device * processes) == 0:
                p, a = resolve_batch(total, processes, per_device=per_device)
                assert (p, a) == (per_device, total // (per_device * processes))
                assert resolve_batch(total, processes, accumulation=a) == (p, a)
            else:
                with pytest.raises(BatchSizeError):
                    resolve_batch(total, processes, per_device=per_device)


def test_inconsistent_numbers_are_named():
    with pytest.raises(BatchSizeError) as err:
        resolve_batch(16, 8, per_device=3, accumulation=2)
    message = str(err.value)
    for number in ("global batch 16", "per-device batch 3", "accumulation 2", "8 processes", "= 48"):
        assert number in message


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(per_device=3), "per-device batch 3 x 8 processes (= 24)"),
        (dict(accumulation=3), "accumulation 3 x 8 processes (= 24)"),
    ],
)
def test_no_whole_split_is_an_error(kwargs, fragment):
    with pytest.raises(
        BatchSizeError,
        match=r"global batch 16 is not a multiple of " + fragment.replace("(", r"\(").replace(")", r"\)"),
    ):
        resolve_batch(16, 8, **kwargs)


def test_more_processes_than_the_global_batch_is_an_error():
    with pytest.raises(BatchSizeError, match="global batch 16"):
        resolve_batch(16, 32)


@pytest.mark.parametrize("args", [(0, 8), (16, 0), (16, 8, 0), (16, 8, None, -1), (16.0, 8), (True, 8), (16, 8, "2")])
def test_non_positive_or_non_integer_inputs(args):
    with pytest.raises(BatchSizeError, match="must be a positive integer"):
        resolve_batch(*args)


def test_is_a_value_error_and_the_doctest_holds():
    assert issubclass(BatchSizeError, ValueError)
    assert doctest.testmod(batching).failed == 0


@pytest.mark.parametrize(
    "command",
    [
        ["cold-start", "--output_dir", "{tmp}/cs", "--global_batch_size", "16", "--per_device_train_batch_size", "1"],
        ["rl", "--output_dir", "{tmp}/rl", "--global_batch_size", "96", "--per_device_train_batch_size", "6"],
    ],
)
def test_an_explicit_accumulation_must_match_the_global_batch(command, tmp_path, monkeypatch):
    """On one process both commands derive accumulation 16; an equal explicit value stands, another is refused."""
    from stages.config_args import UsageError, config_parser, parse_config
    from stages.train.cold_start_config import ColdStartConfig
    from stages.train.rl_config import rl_config_class

    monkeypatch.setenv("WORLD_SIZE", "1")
    argv = [a.format(tmp=tmp_path) for a in command[1:]]
    config_class = ColdStartConfig if command[0] == "cold-start" else rl_config_class()

    def parse(args):
        return parse_config(config_parser(config_class), args)

    assert parse(argv).gradient_accumulation_steps == 16  # derived
    assert parse(argv + ["--gradient_accumulation_steps", "16"]).gradient_accumulation_steps == 16
    conflict = (
        r"^--gradient_accumulation_steps 4 conflicts with --global_batch_size (16|96), "
        r"which derives accumulation 16 \(per-device batch (1|6) x 1 processes\)"
    )
    with pytest.raises(UsageError, match=conflict):
        parse(argv + ["--gradient_accumulation_steps", "4"])
    assert parse(argv[:2] + ["--gradient_accumulation_steps", "4"]).gradient_accumulation_steps == 4  # no global batch
    assert parse(argv[:2]).gradient_accumulation_steps == 1  # neither: HF's default
    assert not any(tmp_path.iterdir())
