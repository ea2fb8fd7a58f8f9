"""The projector of the paper: stack every k frames, then Linear -> ReLU -> Linear to the LLM's width."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Projector"]


class Projector(nn.Module):
    """Maps encoder frames to LLM input embeddings at 1/k of the encoder's frame rate.

    Parameter names (``linear1``, ``linear2``) match the reference checkpoints.

    Args:
        in_dim: encoder frame size d.
        out_dim: the LLM's hidden size H.
        stack: k, the number of consecutive frames concatenated into one position.
        hidden: width of the hidden layer; defaults to ``out_dim`` as in the paper.
    """

    def __init__(self, in_dim: int, out_dim: int, stack: int = 4, hidden: int | None = None) -> None:
        super().__init__()
        self.stack = stack
        hidden = hidden or out_dim
        self.linear1 = nn.Linear(in_dim * stack, hidden)
        self.linear2 = nn.Linear(hidden, out_dim)

    def num_outputs(self, num_frames: int) -> int:
        """Positions produced from ``num_frames`` frames: a trailing partial group is dropped."""
        return num_frames // self.stack

    def forward(self, frames: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Project a padded batch.

        Args:
            frames: ``[b, t, d]``, zero after each utterance's valid frames.
            lengths: ``[b]`` valid frames per utterance.

        Returns:
            ``([b, t // k, H], lengths // k)``. Groups start at frame 0 of every utterance, so each one's
            outputs are the same alone or in a batch.
        """
        b, t, d = frames.shape
        t = t - t % self.stack
        stacked = frames[:, :t].reshape(b, t // self.stack, d * self.stack)  # [b, t/k, k*d], time-major
        stacked = stacked.to(self.linear1.weight.dtype)
        return self.linear2(torch.relu(self.linear1(stacked))), lengths // self.stack
