"""Several devices: the world-size rule, per-rank seeds, and batches dealt to ranks by length."""

import math
import statistics

import pytest

from asr.config import TrainConfig
from asr.data import BucketBatchSampler
from asr.distributed import rank_seed, world_schedule


def _schedule(budget: float, accum: int, lr: float, warmup: int, world: int, rule: str = "keep-batch"):
    config = TrainConfig(max_batch_seconds=budget, grad_accum=accum, lr=lr, warmup_steps=warmup, multi_gpu=rule)
    return world_schedule(config, world)


def test_one_device_runs_the_config_as_written():
    for rule in ("keep-batch", "scale-lr"):
        run = _schedule(1200.0, 2, 1e-3, 1500, 1, rule)
        assert (run.max_batch_seconds, run.grad_accum, run.lr, run.warmup_steps, run.batch_ratio) == (1200.0, 2, 1e-3, 1500, 1.0)


@pytest.mark.parametrize("world", [2, 3, 4, 8])
@pytest.mark.parametrize("accum", [1, 2, 4])
def test_keep_batch_keeps_the_effective_batch_lr_and_warmup(world, accum):
    run = _schedule(1200.0, accum, 1e-3, 1500, world, "keep-batch")
    assert math.isclose(run.max_batch_seconds * run.grad_accum * world, 1200.0 * accum)
    assert run.grad_accum == math.ceil(accum / world)  # accumulation absorbs devices first
    assert (run.lr, run.warmup_steps, run.batch_ratio) == (1e-3, 1500, 1.0)


def test_scale_lr_grows_the_batch_and_keeps_warm_up_audio():
    # The README's old advice: 8 GPUs and grad_accum 2 -> 1 leaves a 4x larger batch.
    run = _schedule(1200.0, 2, 1e-3, 1500, 8, "scale-lr")
    assert (run.max_batch_seconds, run.grad_accum, run.batch_ratio) == (1200.0, 1, 4.0)
    assert math.isclose(run.lr, 2e-3)  # sqrt(4) x
    assert run.warmup_steps == 375  # the same audio as 1,500 steps of the 4x smaller batch
    # Warm-up keeps its share of the run: steps per epoch shrink by the same ratio.
    steps_one_device = 10_000
    assert math.isclose(run.warmup_steps / (steps_one_device / run.batch_ratio), 1500 / steps_one_device)
    # Two devices absorbed by grad_accum 2 -> 1 change nothing.
    two = _schedule(1200.0, 2, 1e-3, 1500, 2, "scale-lr")
    assert (two.max_batch_seconds, two.grad_accum, two.lr, two.warmup_steps) == (1200.0, 1, 1e-3, 1500)
    assert "lr 0.001 -> 0.002" in run.describe()


def test_unknown_rule_is_refused():
    with pytest.raises(ValueError, match="multi_gpu"):
        _schedule(100.0, 1, 1e-3, 10, 2, "linear")


def test_each_rank_has_its_own_seed():
    seeds = {rank_seed(7, rank) for rank in range(64)}
    assert len(seeds) == 64 and rank_seed(7, 0) == 7  # one device: the config's seed
    assert rank_seed(7, 1, step=100) != rank_seed(7, 1)  # a resumed rank draws anew


def test_ranks_take_batches_of_similar_length_in_each_step():
    durations = [1.0 + (i * 7919 % 150) / 10 for i in range(3000)]  # 1 to 16 s
    world = 4
    ranks = [list(BucketBatchSampler(durations, 60.0, seed=1, num_replicas=world, rank=r)) for r in range(world)]
    assert len({len(r) for r in ranks}) == 1
    every = sorted(i for r in ranks for batch in r for i in batch)
    assert set(every) == set(range(3000))  # nothing lost; the last group repeats one batch
    assert len(every) - 3000 <= max(len(b) for r in ranks for b in r) * (world - 1)

    def spread(step_batches: list[list[int]]) -> float:
        longest = [max(durations[i] for i in b) for b in step_batches]
        return max(longest) - min(longest)

    steps = list(zip(*ranks))
    assert statistics.mean(spread(list(s)) for s in steps) < 0.2  # seconds: a step waits for little
    # The steps themselves are shuffled, not run from short to long.
    longest_per_step = [max(durations[i] for i in s[0]) for s in steps]
    assert longest_per_step != sorted(longest_per_step)
    # With sortagrad the first epoch climbs from short to long.
    sorted_ranks = [list(BucketBatchSampler(durations, 60.0, seed=1, num_replicas=world, rank=r, sortagrad=True))
                    for r in range(world)]
    first = [max(durations[i] for i in b) for b in sorted_ranks[0]]
    assert first == sorted(first)
