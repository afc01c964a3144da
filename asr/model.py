"""The acoustic model: frame stacking, bidirectional LSTM layers, a linear output layer.

It maps normalised log-mel features to CTC log-probabilities and knows nothing of
decoding, text or files.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 80  # input feature bins
    vocab_size: int = 29  # output tokens, blank included
    stack: int = 3  # frames stacked into one: 10 ms hop -> 30 ms per LSTM step
    hidden: int = 256  # LSTM units per direction
    layers: int = 3
    dropout: float = 0.1  # between LSTM layers and before the output layer


class AcousticModel(nn.Module):
    """log-mel (B, T, n_mels) -> CTC log-probabilities (B, ceil(T / stack), vocab_size).

    Feature normalisation statistics are buffers, so a checkpoint carries them with the
    weights; :meth:`set_normalization` fills them in before training starts.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.register_buffer("feat_mean", torch.zeros(cfg.n_mels))
        self.register_buffer("feat_std", torch.ones(cfg.n_mels))
        self.input_proj = nn.Sequential(
            nn.Linear(cfg.n_mels * cfg.stack, cfg.hidden * 2), nn.LayerNorm(cfg.hidden * 2), nn.GELU()
        )
        self.lstm = nn.LSTM(
            cfg.hidden * 2,
            cfg.hidden,
            num_layers=cfg.layers,
            dropout=cfg.dropout if cfg.layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden * 2, cfg.vocab_size)

    def set_normalization(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        """Store global per-bin feature statistics; mean, std: (n_mels,)."""
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-5))

    def normalize(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.feat_mean) / self.feat_std  # (B, T, F)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + self.cfg.stack - 1, self.cfg.stack, rounding_mode="floor")

    def forward(
        self, feats: torch.Tensor, lengths: torch.Tensor, normalized: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """feats: (B, T, F) log-mel (already normalised when ``normalized``); lengths: (B,).

        Returns log-probabilities (B, T', V) and output lengths (B,), T' = ceil(T / stack).
        """
        if not normalized:
            feats = self.normalize(feats)
        batch, frames, bins = feats.shape
        stack = self.cfg.stack
        pad = (-frames) % stack
        if pad:
            feats = nn.functional.pad(feats, (0, 0, 0, pad))
        x = feats.reshape(batch, (frames + pad) // stack, bins * stack)  # (B, T', F * stack)
        x = self.input_proj(x)
        out_lengths = self.output_lengths(lengths)
        packed = pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
        y, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])  # (B, T', 2H)
        logits = self.output(self.dropout(y))
        return logits.float().log_softmax(dim=-1), out_lengths
