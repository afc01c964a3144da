"""What a training run reads: the utterances it can learn from, the dev utterances it can
score, the loader that batches this rank's share, and the normalisation statistics of the
features. A run that its data, its folder or its checkpoint stops raises :class:`TrainingError`,
defined here, with the first of those checks.
"""

from __future__ import annotations

import math
import random
import sys
from dataclasses import dataclass, field

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from asr.audio import AudioError, check_audio_file
from asr.config import ExperimentConfig
from asr.data import BucketBatchSampler, SpeechDataset, Utterance, collate, read_manifest
from asr.distributed import WorldSchedule
from asr.errors import UserError
from asr.features import feature_stats, log_mel, num_frames
from asr.text import Vocabulary
from asr.units import lexicon_table, target_units


class TrainingError(UserError, ValueError):
    """Training cannot start (no data, bad manifest, nothing to resume)."""


@dataclass
class TrainingData:
    """The utterances of a run, and the loader of this rank's batches of the training ones."""

    train_utterances: list[Utterance]
    dev_utterances: list[Utterance]  # those whose audio file is there
    sampler: BucketBatchSampler
    loader: DataLoader
    unreadable: dict[int, str] = field(default_factory=dict)  # training utterances whose audio failed, and why

    def note_unreadable(self, failed: list[tuple[int, str]], main_process: bool) -> None:
        """Record the utterances of a batch whose audio could not be read; warn once about each."""
        for utterance, error in failed:
            if utterance not in self.unreadable and main_process:
                print(f"asr: warning: {error}; utterance left out of training", file=sys.stderr, flush=True)
            self.unreadable[utterance] = error

    def check_some_readable(self, readable: int, epoch: int, device: torch.device, world: int) -> None:
        """Stop a run none of whose ranks could read a single utterance of epoch ``epoch``."""
        counts = torch.tensor([readable], device=device)  # NCCL reduces only GPU tensors
        if world > 1:
            dist.all_reduce(counts)
        if not counts.item():
            raise TrainingError(f"no training utterance could be read in epoch {epoch + 1} ({len(self.unreadable)} "
                                "failed, listed above); check the training manifests with asr validate")


def ctc_frames_needed(text: str | list[int]) -> int:
    """Fewest output frames CTC needs for ``text`` (characters or token ids): one per unit,
    plus a blank between each pair of equal neighbours ("LL" needs three)."""
    return len(text) + sum(a == b for a, b in zip(text, text[1:]))


def load_data(cfg: ExperimentConfig, vocab: Vocabulary, run: WorldSchedule, rank: int,
              device: torch.device) -> TrainingData:
    """The run's training and dev utterances, and the loader of rank ``rank``'s batches.

    Utterances the vocabulary cannot spell or that are too long are left out, and said so.
    """
    main_process = rank == 0
    if not cfg.data.train_manifests:
        raise TrainingError("no training manifests: set data.train_manifests in the config")
    train_utts = [u for m in cfg.data.train_manifests for u in read_manifest(m)]
    train_utts, dropped = _encodable(train_utts, vocab, cfg)
    left_out = ", ".join(f"{n} {why}" for why, n in dropped.items())
    if not train_utts:
        raise TrainingError(f"no usable training utterances in {list(cfg.data.train_manifests)} (left out: {left_out})")
    dev_utts = read_manifest(cfg.data.dev_manifest) if cfg.data.dev_manifest else []
    if cfg.data.dev_max_utterances and len(dev_utts) > cfg.data.dev_max_utterances:
        dev_utts = random.Random(0).sample(dev_utts, cfg.data.dev_max_utterances)
    dev_utts = _readable_dev(dev_utts, cfg.data.dev_manifest, main_process)
    if main_process and dropped:
        print(f"utterances left out of training: {left_out}", flush=True)

    sampler = BucketBatchSampler(
        [u.duration for u in train_utts], run.max_batch_seconds, seed=cfg.train.seed,
        num_replicas=run.world_size, rank=rank, sortagrad=cfg.train.sortagrad,
    )
    loader = DataLoader(
        SpeechDataset(train_utts, vocab),
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.train.num_workers > 0,
        # Its own generator: starting an epoch's iterator must not draw from the global one,
        # whose state a checkpoint restores for dropout and SpecAugment (exact resume).
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )
    return TrainingData(train_utts, dev_utts, sampler, loader)


def _encodable(utterances: list[Utterance], vocab: Vocabulary, cfg: ExperimentConfig) -> tuple[list[Utterance], dict[str, int]]:
    dropped = {"too long": 0, "with characters outside the vocabulary": 0, "with an empty transcript": 0,
               "with words outside the lexicon": 0, "with a transcript longer than its audio's frames can carry": 0}
    kept = []
    sample_rate = cfg.features.sample_rate
    table = lexicon_table(vocab) if vocab.units == "phones" else None
    for u in utterances:
        target = target_units(vocab, u.text, u.phones, table) if u.text else ""
        if u.duration > cfg.data.max_duration:
            dropped["too long"] += 1
        elif not u.text:
            dropped["with an empty transcript"] += 1
        elif target is None:
            dropped["with words outside the lexicon"] += 1
        elif vocab.unknown_characters(target):
            dropped["with characters outside the vocabulary"] += 1
        elif ctc_frames_needed(vocab.encode(target)) > math.ceil(
            num_frames(round(u.duration * sample_rate), cfg.features) / cfg.model.stack
        ):
            # CTC cannot align it: its loss would be infinite (zeroed), a wasted slot in the batch.
            dropped["with a transcript longer than its audio's frames can carry"] += 1
        else:
            kept.append(u)
    return kept, {k: v for k, v in dropped.items() if v}


def _readable_dev(dev_utts: list[Utterance], manifest: str, main_process: bool) -> list[Utterance]:
    """The dev utterances whose audio file is there; the others are left out, and said so.

    None there is an error: a score over no utterance would read 0% and choose best.pt.
    """
    kept, missing = [], []
    for utterance in dev_utts:
        try:
            check_audio_file(utterance.audio_filepath)
            kept.append(utterance)
        except AudioError as err:
            missing.append(str(err))
    if dev_utts and not kept:
        raise TrainingError(f"{manifest}: none of its {len(dev_utts)} dev utterances can be read (first: {missing[0]}); "
                            "fix the dev manifest, or leave data.dev_manifest empty to train without one")
    if missing and main_process:
        print(f"asr: warning: {len(missing)} of {len(dev_utts)} dev utterances cannot be read and are left out "
              f"of dev scoring (first: {missing[0]})", file=sys.stderr, flush=True)
    return kept


def normalization_stats(
    utterances: list[Utterance], cfg: ExperimentConfig, vocab: Vocabulary, device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Global per-bin mean and std, (F,) each, of log-mel features over a seeded sample of training audio."""
    sample = random.Random(cfg.train.seed).sample(utterances, min(len(utterances), cfg.train.stats_utterances))
    loader = DataLoader(
        SpeechDataset(sample, vocab),
        batch_sampler=BucketBatchSampler([u.duration for u in sample], 300.0, shuffle=False),
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
    )
    total = total_sq = None
    frames = 0
    failures: dict[int, str] = {}
    for batch in loader:
        failures.update(batch.failed)
        if not batch.indices:
            continue
        feats, lengths = log_mel(batch.waves.to(device), batch.wave_lengths.to(device), cfg.features)
        s, sq, n = feature_stats(feats, lengths)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        frames += n
    if not frames:
        first = next(iter(failures.values()), "no audio")
        raise TrainingError(f"none of the {len(sample)} training utterances sampled for feature statistics could be "
                            f"read (first: {first}); check the training manifests with asr validate")
    mean = total / frames
    std = (total_sq / frames - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.float()
