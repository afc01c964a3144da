"""The acoustic model: a front end (frame stacking or convolutions), an encoder, a linear
output layer.

The encoder is recurrent layers (the default) or attention blocks (:mod:`asr.attention`:
Transformer or Conformer). The recurrent cell is a choice: LSTM (the default), GRU or a
vanilla tanh RNN, each bidirectional (the default) or unidirectional, which makes the model
causal: its output at a frame depends on no later frame. The attention encoders see the
whole utterance.

It maps normalised log-mel features to CTC log-probabilities and knows nothing of
decoding, text or files.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from asr.attention import ENCODERS, POSITIONS, AttentionEncoder
from asr.bounds import at_least, check

CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}  # nn.RNN: Elman, tanh
FRONTENDS = ("stack", "conv")
CONV_KERNELS = ((5, 11), (3, 7))  # (time, frequency) of the two convolutions


@dataclass(frozen=True)
class ModelConfig:
    n_mels: int = 80  # input feature bins: an experiment config sets it to features.n_mels
    vocab_size: int = 29  # output tokens, blank included
    stack: int = 3  # time subsampling: 10 ms hop -> 30 ms per recurrent step
    # How frames become recurrent steps: "stack" concatenates ``stack`` frames; "conv" runs two
    # 2-D convolutions over time and frequency (DeepSpeech 2's front end), strided by 2 and
    # stack / 2 in time and by 2 twice in frequency, which learn features that shift with a
    # voice's formants. "conv" needs an even stack.
    frontend: str = "stack"
    conv_channels: int = 32
    hidden: int = 256  # recurrent units per direction
    layers: int = 3
    dropout: float = 0.1  # between recurrent layers and before the output layer
    packed: bool = False  # run the recurrent layers on PackedSequences (see RecurrentLayer)
    cell: str = "lstm"  # lstm | gru | rnn
    bidirectional: bool = True  # False: causal, each output sees only the frames up to it
    # rnn: ``layers`` recurrent layers of ``hidden`` units per direction; transformer or
    # conformer: ``layers`` attention blocks of width ``hidden`` (asr/attention.py), for which
    # ``cell`` and ``packed`` mean nothing and ``bidirectional`` must stay true.
    encoder: str = "rnn"
    attention_heads: int = 4
    ff_multiplier: int = 4  # feed-forward width = ff_multiplier x hidden
    conv_kernel: int = 15  # the Conformer's depthwise convolution, in encoder steps (odd)
    positions: str = "relative"  # relative (a learned bias per distance) | sinusoidal (absolute)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell = {self.cell!r}: choose one of {', '.join(CELLS)}")
        if self.frontend not in FRONTENDS:
            raise ValueError(f"frontend = {self.frontend!r}: choose one of {', '.join(FRONTENDS)}")
        if self.frontend == "conv" and self.stack % 2:
            raise ValueError(f"frontend = 'conv' subsamples by 2 and stack / 2: stack must be even, got {self.stack}")
        check(self, {"n_mels": at_least(1), "vocab_size": at_least(1), "stack": at_least(1),
                     "hidden": at_least(1), "layers": at_least(1), "conv_channels": at_least(1),
                     "dropout": ((lambda v: 0.0 <= v < 1.0), "a number from 0 up to (not including) 1"),
                     "attention_heads": at_least(1), "ff_multiplier": at_least(1),
                     "conv_kernel": ((lambda v: v >= 1 and v % 2 == 1), "an odd number of steps")})
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder = {self.encoder!r}: choose one of {', '.join(ENCODERS)}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions = {self.positions!r}: choose one of {', '.join(POSITIONS)}")
        if self.encoder != "rnn":
            if not self.bidirectional:
                raise ValueError(f"encoder = {self.encoder!r} attends to the whole utterance: bidirectional = false "
                                 "(a causal model) is for the recurrent encoder")
            if self.hidden % self.attention_heads or (self.positions == "sinusoidal" and self.hidden % 2):
                raise ValueError(f"hidden = {self.hidden} must split evenly into {self.attention_heads} attention "
                                 "heads (and be even for sinusoidal positions)")

    @property
    def width(self) -> int:
        """Features per frame between the encoder's layers: hidden x directions for recurrent ones."""
        if self.encoder != "rnn":
            return self.hidden
        return self.hidden * (2 if self.bidirectional else 1)


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's valid frames in place of order, leaving padding where it is.

    x: (B, T, D); lengths: (B,). Applying it twice gives back ``x``.
    """
    frames = torch.arange(x.shape[1], device=x.device)[None, :]  # (1, T)
    lengths = lengths.to(x.device, non_blocking=True)[:, None]  # (B, 1)
    index = torch.where(frames < lengths, lengths - 1 - frames, frames)  # (B, T)
    return x.gather(1, index[:, :, None].expand_as(x))


LAYOUTS = ("split", "fused", "padded")


def pack_by_length(x: torch.Tensor, lengths: torch.Tensor) -> tuple[PackedSequence, torch.Tensor]:
    """x: (B, T, D), lengths: (B,) -> the batch sorted by length and packed, and that order (B,).

    PyTorch's own unsorted packing copies its index to the device, and its unpacking copies
    one back, each a blocking copy that waits for the GPU; here the order is computed on the
    host and sent without waiting, and :func:`unpack_by_length` undoes it on the device.
    """
    sorted_lengths, order = lengths.cpu().sort(descending=True)
    if x.is_cuda:
        order = order.pin_memory().to(x.device, non_blocking=True)
    return pack_padded_sequence(x.index_select(0, order), sorted_lengths, batch_first=True), order


def unpack_by_length(h: PackedSequence, order: torch.Tensor, total_length: int) -> torch.Tensor:
    """The inverse of :func:`pack_by_length`: (B, total_length, H), padding frames zero."""
    padded = pad_packed_sequence(h, batch_first=True, total_length=total_length)[0]
    return torch.empty_like(padded).index_copy_(0, order, padded)


def _split_name(fused_name: str) -> str:
    """A fused module's parameter name -> its name in the split layout (checkpoints' names).

    ``weight_ih_l0`` is the forward direction's, ``weight_ih_l0_reverse`` the backward's.
    """
    if fused_name.endswith("_reverse"):
        return "backward_rnn." + fused_name.removesuffix("_reverse")
    return "forward_rnn." + fused_name


class RecurrentLayer(nn.Module):
    """One recurrent layer: a forward RNN and, if bidirectional, a backward one.

    Two layouts hold the same weights and give the same outputs at valid frames:

    - ``split`` (the default; what checkpoints store): each direction is its own
      unidirectional module. The backward one reads each sequence reversed within its own
      length, so neither direction ever sees padding. Without ``packed`` the RNNs run on the
      padded tensor (padding frames compute values that are ignored); this is ~3x faster to
      train on CPU than PackedSequence, whose backward pass is slow there. With ``packed``
      the same weights run on PackedSequences.
    - ``fused``: one (bidirectional) module run on a PackedSequence, so cuDNN runs both
      directions at once and skips padding (Appleyard et al., 2016): the layout for GPUs.
    - ``padded``: the fused module run on the padded tensor, as oneDNN runs both directions
      at once on a CPU. Valid frames of sequences as long as the batch's longest get the split
      layout's outputs; a shorter sequence's backward direction starts in its padding (zeros,
      after the model's mask), so its outputs drift from the split layout's by what those
      frames leave in the state: small where batches are bucketed by length.
      Its state dict uses the split layout's names (state-dict hooks map them both ways),
      so a checkpoint loads into either layout and the optimizer's parameter order is the
      same in both (forward w_ih, w_hh, b_ih, b_hh, then backward).
    """

    def __init__(self, input_size: int, hidden: int, cell: str, bidirectional: bool, packed: bool,
                 fused: bool = False, padded: bool = False) -> None:
        super().__init__()
        rnn = CELLS[cell]
        self.packed = packed
        self.fused = fused or padded  # one module for both directions
        self.padded = padded
        if self.fused:
            self.rnn = rnn(input_size, hidden, batch_first=True, bidirectional=bidirectional)
            self._register_state_dict_hook(_save_split_names)
            self._register_load_state_dict_pre_hook(_load_split_names)
            modules = [self.rnn]
        else:
            self.forward_rnn = rnn(input_size, hidden, batch_first=True)
            self.backward_rnn = rnn(input_size, hidden, batch_first=True) if bidirectional else None
            modules = [m for m in (self.forward_rnn, self.backward_rnn) if m is not None]
        if cell == "lstm":
            # Forget-gate bias 1 (Jozefowicz et al., 2015): cells start by remembering, which
            # shortens CTC's initial all-blank plateau. PyTorch orders gates i, f, g, o.
            with torch.no_grad():
                for module in modules:
                    for name, bias in module.named_parameters():
                        if name.startswith("bias_"):
                            bias[hidden : 2 * hidden].fill_(1.0 if name.startswith("bias_ih") else 0.0)

    def _run(self, rnn: nn.Module, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if not self.packed:
            return rnn(x)[0]
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        return pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=x.shape[1])[0]

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D), lengths: (B,) -> (B, T, H), or (B, T, 2H) with the backward states after the forward ones."""
        if self.padded:
            return self.rnn(x)[0]
        if self.fused:
            packed, order = pack_by_length(x, lengths)
            return unpack_by_length(self.run_packed(packed), order, x.shape[1])
        ahead = self._run(self.forward_rnn, x, lengths)
        if self.backward_rnn is None:
            return ahead
        back = reverse_within_lengths(self._run(self.backward_rnn, reverse_within_lengths(x, lengths), lengths), lengths)
        return torch.cat([ahead, back], dim=-1)

    def run_packed(self, x: PackedSequence) -> PackedSequence:
        """The fused layout on a PackedSequence of (D,) frames -> one of (H,) or (2H,) frames."""
        return self.rnn(x)[0]


def _save_split_names(module: RecurrentLayer, state: dict, prefix: str, local_metadata: dict) -> None:
    for key in [k for k in state if k.startswith(prefix + "rnn.")]:
        state[prefix + _split_name(key.removeprefix(prefix + "rnn."))] = state.pop(key)


def _load_split_names(state: dict, prefix: str, *args) -> None:
    for key in [k for k in state if k.startswith((prefix + "forward_rnn.", prefix + "backward_rnn."))]:
        direction, name = key.removeprefix(prefix).split(".", 1)
        state[prefix + "rnn." + name + ("_reverse" if direction == "backward_rnn" else "")] = state.pop(key)


class ConvFrontend(nn.Module):
    """(B, T, F) frames -> (B, T / stack, channels * ceil(F / 4)): two strided 2-D convolutions.

    T must be a multiple of ``stack``; each convolution pads half its kernel, so the output
    has exactly T / stack steps.
    """

    def __init__(self, n_mels: int, channels: int, stack: int) -> None:
        super().__init__()
        (k1t, k1f), (k2t, k2f) = CONV_KERNELS
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels, (k1t, k1f), stride=(2, 2), padding=(k1t // 2, k1f // 2)), nn.GELU(),
            nn.Conv2d(channels, channels, (k2t, k2f), stride=(stack // 2, 2), padding=(k2t // 2, k2f // 2)),
            nn.GELU(),
        )
        bins = (n_mels + 1) // 2
        self.out_features = channels * ((bins + 1) // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x[:, None])  # (B, C, T', F')
        return y.permute(0, 2, 1, 3).flatten(2)  # (B, T', C * F')


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
        width = cfg.width
        self.frontend = ConvFrontend(cfg.n_mels, cfg.conv_channels, cfg.stack) if cfg.frontend == "conv" else None
        inputs = self.frontend.out_features if self.frontend is not None else cfg.n_mels * cfg.stack
        self.input_proj = nn.Sequential(nn.Linear(inputs, width), nn.LayerNorm(width), nn.GELU())
        if cfg.encoder == "rnn":
            self.encoder = None
            self.layers = nn.ModuleList(RecurrentLayer(width, cfg.hidden, cfg.cell, cfg.bidirectional, cfg.packed)
                                        for _ in range(cfg.layers))
        else:
            self.encoder = AttentionEncoder(cfg.encoder, width, cfg.layers, cfg.attention_heads, cfg.ff_multiplier,
                                            cfg.conv_kernel, cfg.positions, cfg.dropout)
            self.layers = nn.ModuleList()  # no recurrent layers: layouts do not apply
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(width, cfg.vocab_size)

    @property
    def layout(self) -> str:
        """``"split"``, ``"fused"`` or ``"padded"``: how the recurrent layers run (see
        :class:`RecurrentLayer`); ``"split"`` for an attention encoder, which has none."""
        if not len(self.layers) or not self.layers[0].fused:
            return "split"
        return "padded" if self.layers[0].padded else "fused"

    def set_layout(self, layout: str) -> AcousticModel:
        """Rebuild the recurrent layers in ``layout``, keeping their weights; returns self.

        Call it before an optimizer is made over the parameters: the layers are new modules.
        """
        if layout not in LAYOUTS:
            raise ValueError(f"layout = {layout!r}: choose one of {', '.join(LAYOUTS)}")
        if layout == self.layout or not len(self.layers):
            return self
        reference = next(self.layers[0].parameters())
        cfg = self.cfg
        for i, layer in enumerate(self.layers):
            new = RecurrentLayer(cfg.width, cfg.hidden, cfg.cell, cfg.bidirectional, cfg.packed, fused=layout == "fused",
                                 padded=layout == "padded")
            new = new.to(device=reference.device, dtype=reference.dtype)
            new.load_state_dict(layer.state_dict())
            new.train(layer.training)
            self.layers[i] = new
        return self

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
        # Padding frames become the mean (zero), so a stacked frame that straddles the end of
        # an utterance is the same whatever batch the utterance sits in.
        # lengths may stay on the host (packing needs them there): copied without waiting.
        valid = torch.arange(frames, device=feats.device)[None, :] < lengths.to(feats.device, non_blocking=True)[:, None]
        feats = feats.masked_fill(~valid[:, :, None], 0.0)
        stack = self.cfg.stack
        pad = (-frames) % stack
        if pad:
            feats = nn.functional.pad(feats, (0, 0, 0, pad))
        if self.frontend is not None:
            x = self.frontend(feats)  # (B, T', C * F')
        else:
            x = feats.reshape(batch, (frames + pad) // stack, bins * stack)  # (B, T', F * stack)
        x = self.input_proj(x)
        out_lengths = self.output_lengths(lengths)
        if self.encoder is not None:
            x = self.encoder(x, out_lengths)  # (B, T', hidden)
        elif self.layout == "fused":
            # Packed once for all layers. With lengths on the host, as the training loop passes
            # them, packing never waits for the device.
            h, order = pack_by_length(x, out_lengths)
            for i, layer in enumerate(self.layers):
                if i:
                    h = h._replace(data=self.dropout(h.data))
                h = layer.run_packed(h)
            x = unpack_by_length(h, order, x.shape[1])  # (B, T', width)
        else:
            for i, layer in enumerate(self.layers):
                if i:
                    x = self.dropout(x)
                x = layer(x, out_lengths)  # (B, T', width)
        logits = self.output(self.dropout(x))
        return logits.float().log_softmax(dim=-1), out_lengths
