"""Attention encoders: a pre-norm Transformer and a Conformer, beside the recurrent layers.

Both map (B, T, D) frames and their lengths to (B, T, D) frames, D = ``ModelConfig.hidden``,
with ``ModelConfig.layers`` blocks. Every utterance attends to its own valid frames only:
padded keys are masked out of every attention, and the Conformer's convolution sees padded
frames as zeros, so an output at a valid frame depends neither on padding nor on the other
utterances of a batch. Nothing here normalises across a batch (the Conformer's convolution
module uses LayerNorm where Gulati et al. have BatchNorm, whose batch statistics would tie
utterances together in training).

- ``transformer``: pre-norm blocks (Xiong et al., 2020: "On Layer Normalization in the
  Transformer Architecture"), self-attention then a feed-forward layer, and a final
  LayerNorm.
- ``conformer``: Gulati et al., 2020 ("Conformer: Convolution-augmented Transformer for
  Speech Recognition"): half-step feed-forward, self-attention, convolution module,
  half-step feed-forward, LayerNorm ("macaron" blocks), Swish activations.

Positions: ``relative`` adds a learned bias per head and clipped distance to the attention
scores (Shaw et al., 2018, "Self-Attention with Relative Position Representations"; as in
T5): the same for every utterance length, and exportable to ONNX as plain gathers.
``sinusoidal`` adds Vaswani et al.'s (2017) absolute encodings to the input once.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

ENCODERS = ("rnn", "transformer", "conformer")
POSITIONS = ("relative", "sinusoidal")
# Relative distances beyond this many steps share one bias: 64 steps of 40 ms are 2.6 s,
# longer than any phone or word; Shaw et al. found distances past 16 tokens added nothing.
MAX_DISTANCE = 64


def sinusoidal_positions(length: int, dim: int, device: torch.device) -> torch.Tensor:
    """(length, dim) absolute position encodings of Vaswani et al. (2017), dim even."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    frequency = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    angles = position * frequency  # (T, dim / 2)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1)  # sin, cos interleaved


class RelativePositionBias(nn.Module):
    """A learned bias for each head and each clipped distance between query and key frames."""

    def __init__(self, heads: int) -> None:
        super().__init__()
        self.bias = nn.Embedding(2 * MAX_DISTANCE + 1, heads)
        nn.init.zeros_(self.bias.weight)  # attention starts position-blind, as with no bias

    def forward(self, frames: int, device: torch.device) -> torch.Tensor:
        steps = torch.arange(frames, device=device)
        distance = (steps[None, :] - steps[:, None]).clamp(-MAX_DISTANCE, MAX_DISTANCE) + MAX_DISTANCE
        return self.bias(distance).permute(2, 0, 1)[None]  # (1, H, T, T)


class SelfAttention(nn.Module):
    """Multi-head self-attention whose scores take an additive bias and a key mask."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """x: (B, T, D); padding: (B, T) True at padded frames; bias: (1, H, T, T) or None."""
        batch, frames, dim = x.shape
        q, k, v = self.qkv(x).view(batch, frames, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(dim // self.heads)  # (B, H, T, T)
        if bias is not None:
            scores = scores + bias
        # Every row keeps at least its own utterance's first frame, so no row is all -inf.
        scores = scores.masked_fill(padding[:, None, None, :], torch.finfo(scores.dtype).min)
        weights = self.dropout(scores.softmax(dim=-1))
        return self.out((weights @ v).transpose(1, 2).reshape(batch, frames, dim))


class FeedForward(nn.Module):
    """LayerNorm, expand, activation, dropout, project back, dropout (the pre-norm residual branch)."""

    def __init__(self, dim: int, multiplier: int, dropout: float, activation: type[nn.Module]) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.LayerNorm(dim), nn.Linear(dim, multiplier * dim), activation(), nn.Dropout(dropout),
            nn.Linear(multiplier * dim, dim), nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvolutionModule(nn.Module):
    """Gulati et al.'s convolution module: LayerNorm, pointwise conv + GLU, depthwise conv,
    LayerNorm (for their BatchNorm), Swish, pointwise conv, dropout. Padded frames are zeroed
    before the depthwise convolution, so they add nothing to valid frames' outputs."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.pointwise_in = nn.Linear(dim, 2 * dim)
        self.depthwise = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.depthwise_norm = nn.LayerNorm(dim)
        self.pointwise_out = nn.Linear(dim, dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        y = F.glu(self.pointwise_in(self.norm(x)), dim=-1)  # (B, T, D)
        y = y.masked_fill(padding[:, :, None], 0.0)
        y = self.depthwise(y.transpose(1, 2)).transpose(1, 2)
        y = self.pointwise_out(F.silu(self.depthwise_norm(y)))
        return self.dropout(y)


class TransformerBlock(nn.Module):
    """Pre-norm: x + attention(LayerNorm(x)), then x + feed-forward(x) (the branch norms itself)."""

    def __init__(self, dim: int, heads: int, multiplier: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.feed_forward = FeedForward(dim, multiplier, dropout, nn.ReLU)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = x + self.dropout(self.attention(self.attention_norm(x), padding, bias))
        return x + self.feed_forward(x)


class ConformerBlock(nn.Module):
    """x + FF/2, x + attention, x + convolution, x + FF/2, LayerNorm (Gulati et al., 2020, eq. 1)."""

    def __init__(self, dim: int, heads: int, multiplier: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.feed_forward_in = FeedForward(dim, multiplier, dropout, nn.SiLU)
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads, dropout)
        self.dropout = nn.Dropout(dropout)
        self.convolution = ConvolutionModule(dim, kernel, dropout)
        self.feed_forward_out = FeedForward(dim, multiplier, dropout, nn.SiLU)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        x = x + 0.5 * self.feed_forward_in(x)
        x = x + self.dropout(self.attention(self.attention_norm(x), padding, bias))
        x = x + self.convolution(x, padding)
        x = x + 0.5 * self.feed_forward_out(x)
        return self.norm(x)


class AttentionEncoder(nn.Module):
    """``layers`` Transformer or Conformer blocks of width ``dim`` over (B, T, dim) frames."""

    def __init__(self, kind: str, dim: int, layers: int, heads: int, multiplier: int, kernel: int,
                 positions: str, dropout: float) -> None:
        super().__init__()
        self.positions = positions
        if kind == "transformer":
            blocks = [TransformerBlock(dim, heads, multiplier, dropout) for _ in range(layers)]
        else:
            blocks = [ConformerBlock(dim, heads, multiplier, kernel, dropout) for _ in range(layers)]
        self.blocks = nn.ModuleList(blocks)
        # One bias table per block: each block's heads learn their own reach.
        self.relative = nn.ModuleList(RelativePositionBias(heads) for _ in range(layers)) if positions == "relative" else None
        # Pre-norm blocks leave their sum unnormalised; Conformer blocks end with their own LayerNorm.
        self.final_norm = nn.LayerNorm(dim) if kind == "transformer" else nn.Identity()
        self.input_dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), lengths: (B,) valid frames -> (B, T, D); frames past a length are padding."""
        frames = x.shape[1]
        padding = torch.arange(frames, device=x.device)[None, :] >= lengths.to(x.device)[:, None]  # (B, T)
        if self.relative is None:
            x = x + sinusoidal_positions(frames, x.shape[2], x.device).to(x.dtype)
        x = self.input_dropout(x)
        for i, block in enumerate(self.blocks):
            bias = self.relative[i](frames, x.device) if self.relative is not None else None
            x = block(x, padding, bias)
        return self.final_norm(x)
