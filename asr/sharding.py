"""Splitting evaluation and transcription across the processes of a ``torchrun`` job.

Under ``torchrun --nnodes N --nproc-per-node G -m asr evaluate|transcribe ...`` every
process reads the same arguments, takes its share of the work (:func:`balanced_shares`:
shares of equal length, not of equal count, since a process waits for none but the job
does for its slowest), and hands what it made to rank 0, which writes what one process
would have written. Without torchrun the world is one process and nothing is gathered.

A failure on any rank must not leave the others waiting for it: :func:`gather_work` runs a
rank's work, catches what it raises, and then every rank meets once to say whether it
failed, so all of them stop together with the first failure's one line.
"""

from __future__ import annotations

import contextlib
import heapq
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.distributed as dist

from asr.distributed import init_distributed
from asr.errors import UserError

T = TypeVar("T")


class ShardError(UserError):
    """A rank of the job failed; every rank raises it, with the first failure's one line."""


@dataclass(frozen=True)
class World:
    """This process's place in the job: rank ``rank`` of ``size`` (``local_rank`` on its node)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        """Whether this process reports and writes the job's results (rank 0)."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (nothing to wait for in a world of one)."""
        if self.size > 1:
            dist.barrier()


@contextlib.contextmanager
def join_world() -> Iterator[World]:
    """The world of this process: under torchrun, the process group (gloo on the CPU, NCCL
    on GPUs) is started here and closed at the end; otherwise a world of one."""
    rank, local_rank, size, started = init_distributed()
    if size > 1 and dist.get_backend() == "nccl":
        # Each rank's own GPU becomes its current one: NCCL's collectives run there, and a
        # model loaded on "cuda" (--device auto or cuda) goes there.
        torch.cuda.set_device(local_rank)
    try:
        yield World(rank, size, local_rank)
    finally:
        if started:
            dist.destroy_process_group()


def balanced_shares(costs: Sequence[float], size: int) -> list[list[int]]:
    """Deal items of the given costs (seconds of audio) to ``size`` ranks with totals as
    equal as the items allow: the longest first, each to the rank with the least so far
    (Graham's LPT rule, within 4/3 of the best split). Each share lists item indices in
    input order; every rank computes the same shares from the same costs."""
    loads = [(0.0, rank) for rank in range(size)]
    shares: list[list[int]] = [[] for _ in range(size)]
    for index in sorted(range(len(costs)), key=lambda i: (-costs[i], i)):
        load, rank = heapq.heappop(loads)
        shares[rank].append(index)
        heapq.heappush(loads, (load + costs[index], rank))
    return [sorted(share) for share in shares]


def gather_work(world: World, work: Callable[[], T]) -> list[T] | None:
    """Run ``work`` on this rank; rank 0 gets every rank's result, in rank order, and the
    other ranks None. In a world of one, ``work()``'s result alone, and what it raises
    passes through as it is.

    If ``work`` raises on any rank, every rank raises :class:`ShardError` with the first
    failing rank's line (a bug's traceback is printed on its own rank's stderr first).
    A rank that dies (killed, out of memory) ends the others' wait with a ShardError too.
    """
    if world.size == 1:
        return [work()]
    result, error = None, None
    try:
        result = work()
    except UserError as err:
        error = " ".join(str(err).split())
    except Exception as err:  # a bug: its traceback here, one line for the job
        traceback.print_exc(file=sys.stderr)
        error = f"{type(err).__name__}: {' '.join(str(err).split())}"
    errors: list[str | None] = [None] * world.size
    _collective(lambda: dist.all_gather_object(errors, error))
    failed = [(rank, line) for rank, line in enumerate(errors) if line is not None]
    if failed:
        rank, line = failed[0]
        where = "" if len(failed) == world.size else f" (rank {rank} of {world.size})"
        raise ShardError(f"{line}{where}")
    results: list[T] | None = [None] * world.size if world.main else None
    _collective(lambda: dist.gather_object(result, results, dst=0))
    return results


def _collective(call: Callable[[], None]) -> None:
    """Run a collective; a rank gone (killed, crashed) becomes one line, not a traceback."""
    try:
        call()
    except (RuntimeError, dist.DistBackendError) as err:  # gloo: a peer closed its connection
        detail = re.sub(r"^\[[^]]*\]\s*", "", " ".join(str(err).split()))  # less gloo's source location
        raise ShardError(f"another process of this torchrun job stopped before it finished ({detail[:160]}); "
                         "its own output says why") from None
