"""evaluate and transcribe under torchrun: shares of equal length, the same results as one
process to the last digit, and a failure on any rank ends every rank in one line, never a hang."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data import Utterance, write_manifest
from asr.evaluate import length_batches, shard_batches
from asr.sharding import balanced_shares

REPO = Path(__file__).resolve().parents[1]
WORLD = 2


def test_shares_are_balanced_by_length_and_keep_input_order() -> None:
    costs = [1.0, 9.0, 2.0, 8.0, 3.0, 7.0, 4.0, 6.0, 5.0, 0.5]
    shares = balanced_shares(costs, 3)
    assert sorted(i for share in shares for i in share) == list(range(len(costs)))
    assert all(share == sorted(share) for share in shares)
    loads = [sum(costs[i] for i in share) for share in shares]
    assert max(loads) - min(loads) <= max(costs) and max(loads) <= 4 / 3 * sum(costs) / 3 + 1e-9
    assert balanced_shares(costs, 1) == [list(range(len(costs)))]
    assert balanced_shares([], 2) == [[], []]


def test_ranks_decode_the_batches_one_process_decodes() -> None:
    rng = np.random.default_rng(0)
    utterances = [Utterance(str(i), "x.wav", float(rng.uniform(0.5, 15)), "A", "s") for i in range(200)]
    shares = [shard_batches(utterances, rank, 3, max_batch_seconds=60.0) for rank in range(3)]
    assert sorted(b for share in shares for b in share) == sorted(length_batches(utterances, 60.0))
    padded = [sum(len(b) * max(utterances[i].duration for i in b) for b in share) for share in shares]
    assert max(padded) < 1.1 * min(padded)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKER = """
import os, sys
from asr.errors import UserError
from asr.sharding import ShardError, gather_work, join_world

with join_world() as world:
    def fail_on_rank_1():
        if world.rank == 1:
            raise UserError("bad.flac: cannot decode audio")
        return world.rank
    def die_on_rank_1():
        if world.rank == 1:
            os._exit(3)  # killed, out of memory: no word from it
        return world.rank
    for work in (lambda: world.rank, fail_on_rank_1, die_on_rank_1):
        try:
            print(world.rank, "result", gather_work(world, work), flush=True)
        except ShardError as err:
            print(world.rank, "error", err, flush=True)
"""


@pytest.mark.slow
def test_a_failing_or_dying_rank_ends_every_rank_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "WORLD_SIZE": str(WORLD), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()),
           "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    ranks = [subprocess.Popen([sys.executable, "-c", WORKER], env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(WORLD)]
    outputs = [rank.communicate(timeout=120) for rank in ranks]
    rank0 = outputs[0][0].splitlines()
    assert rank0[:2] == ["0 result [0, 1]", "0 error bad.flac: cannot decode audio (rank 1 of 2)"]
    assert rank0[2].startswith("0 error another process of this torchrun job stopped before it finished (")
    assert len(rank0) == 3 and ranks[0].returncode == 0
    assert outputs[1][0].splitlines() == ["1 result None", "1 error bad.flac: cannot decode audio (rank 1 of 2)"]
    assert ranks[1].returncode == 3


@pytest.fixture
def corpus(tmp_path: Path) -> tuple[Path, Path]:
    """A manifest of 24 utterances of noise, 0.3-3 s, a corrupt file among them, and their folder."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "audio"
    folder.mkdir()
    rows = []
    for i in range(24):
        samples = (0.1 * rng.standard_normal(int(rng.uniform(0.3, 3.0) * 16_000))).astype(np.float32)
        sf.write(folder / f"s{i % 3}-c-{i:02d}.flac", samples, 16_000)
        rows.append(Utterance(f"s{i % 3}-c-{i:02d}", str(folder / f"s{i % 3}-c-{i:02d}.flac"),
                              round(len(samples) / 16_000, 4), "HELLO WORLD", f"s{i % 3}"))
    (folder / "s2-c-05.flac").write_bytes(b"fLaC" + bytes(400))  # unreadable since the manifest was written
    write_manifest(rows, tmp_path / "m.jsonl")
    return tmp_path / "m.jsonl", folder


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(WORLD),
                "--master-port", str(_free_port())]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([*torchrun, "-m", "asr", *args, "--device", "cpu"], capture_output=True, text=True,
                          env=env, timeout=300)


def _without_times(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if not k.endswith("seconds") and k != "output_dir"}


@pytest.mark.slow
def test_two_processes_evaluate_as_one(tmp_path: Path, random_checkpoint: Path, corpus, capsys) -> None:
    manifest, _ = corpus
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["evaluate", "--model", str(random_checkpoint), "--manifest", str(manifest), "--device", "cpu",
                 "--out-dir", str(one), "--json"]) == 1  # the corrupt file is skipped and said so
    alone = json.loads(capsys.readouterr().out)
    run = _torchrun("evaluate", "--model", str(random_checkpoint), "--manifest", str(manifest), "--out-dir", str(two),
                    "--json")
    assert run.returncode == 1, run.stderr
    assert _without_times(json.loads(run.stdout)) == _without_times(alone)
    assert alone["utterances"] == 23 and alone["skipped"] == 1
    assert run.stderr.count("s2-c-05.flac") == 1  # reported once, by rank 0
    for name in ("ref.txt", "hyp.txt", "ref.trn", "hyp.trn", "errors.txt", "skipped.txt"):
        assert (one / name).read_text() == (two / name).read_text(), name


@pytest.mark.slow
def test_two_processes_transcribe_as_one(tmp_path: Path, random_checkpoint: Path, corpus, capsys) -> None:
    _, folder = corpus
    one, two = tmp_path / "one", tmp_path / "two"
    common = ["--model", str(random_checkpoint), str(folder), "--format", "all"]
    assert main(["transcribe", *common, "--output-dir", str(one), "--manifest-out", str(tmp_path / "one.jsonl"),
                 "--device", "cpu"]) == 1
    alone = capsys.readouterr().err
    run = _torchrun("transcribe", *common, "--output-dir", str(two), "--manifest-out", str(tmp_path / "two.jsonl"))
    assert run.returncode == 1, run.stderr
    files = sorted(p.relative_to(one) for p in one.rglob("*"))
    assert len(files) == 23 * 4 and files == sorted(p.relative_to(two) for p in two.rglob("*"))  # each written once
    for name in files:
        assert (one / name).read_text() == (two / name).read_text(), name
    assert (tmp_path / "one.jsonl").read_text() == (tmp_path / "two.jsonl").read_text()
    assert len((tmp_path / "two.jsonl").read_text().splitlines()) == 23
    lines = [line for line in run.stderr.splitlines() if line.startswith(("asr: error:", "transcribed"))]
    expected = [line.replace("one", "two") for line in alone.splitlines() if line.startswith(("asr: error:", "transcribed"))]
    assert lines == expected
    assert len(lines) == 2 and "s2-c-05.flac" in lines[0]


@pytest.mark.slow
def test_two_processes_print_the_json_lines_of_one(tmp_path: Path, random_checkpoint: Path, corpus, capsys) -> None:
    manifest, folder = corpus
    shutil.copy(folder / "s1-c-01.flac", tmp_path / "extra.flac")
    args = ["--model", str(random_checkpoint), str(tmp_path / "extra.flac"), "--manifest", str(manifest),
            "--format", "json"]
    assert main(["transcribe", *args, "--device", "cpu"]) == 1
    alone = capsys.readouterr().out
    run = _torchrun("transcribe", *args)
    assert run.returncode == 1 and run.stdout == alone
    rows = [json.loads(line) for line in alone.splitlines()]
    assert len(rows) == 24 and rows[0]["path"] == str(tmp_path / "extra.flac") and rows[1]["path"].endswith("s0-c-00.flac")


@pytest.mark.slow
def test_a_bad_argument_under_torchrun_is_one_line(tmp_path: Path, corpus) -> None:
    manifest, _ = corpus
    run = _torchrun("evaluate", "--model", str(tmp_path / "missing.pt"), "--manifest", str(manifest))
    errors = [line for line in run.stderr.splitlines() if line.startswith("asr: error:")]
    assert run.returncode != 0 and len(errors) == 1 and "missing.pt" in errors[0], run.stderr
    assert run.stderr.splitlines()[0] == errors[0]  # before torchrun's own report of the processes that exited
