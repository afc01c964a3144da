"""Checks that model tests share: a few CTC training steps, and ONNX Runtime against PyTorch."""

from __future__ import annotations

import torch


def ctc_train_steps(model: torch.nn.Module, feats: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                    target_lengths: torch.Tensor, steps: int = 8, lr: float = 1e-2) -> list[float]:
    """``steps`` Adam steps of CTC loss on one batch; the loss of each."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        log_probs, out_lengths = model(feats, lengths)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def assert_onnx_matches(loaded, onnx_model, shapes: tuple[tuple[int, int], ...], scale: float = 1.0,  # noqa: ANN001
                        offset: float = 0.0, seed: int = 1) -> None:
    """ONNX Runtime's log-probabilities within 1e-4 of PyTorch's at valid frames, and the same
    lengths, for random features of each (batch, frames) in ``shapes``, the first row of each
    batch full length and the others random lengths."""
    generator = torch.Generator().manual_seed(seed)
    n_mels = loaded.config.model.n_mels
    for batch, frames in shapes:
        features = torch.randn(batch, frames, n_mels, generator=generator) * scale + offset
        lengths = torch.randint(1, frames + 1, (batch,), generator=generator)
        lengths[0] = frames
        with torch.inference_mode():
            expected, expected_lengths = loaded.model(features, lengths)
        got, got_lengths = onnx_model.run(features, lengths)
        assert torch.equal(got_lengths, expected_lengths) and got.shape == expected.shape
        valid = torch.arange(expected.shape[1])[None, :] < expected_lengths[:, None]
        assert (got - expected).abs()[valid].max() < 1e-4, (batch, frames)
