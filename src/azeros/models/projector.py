"""The projector of the paper: stack every k frames, then Linear -> ReLU -> Linear to the LLM's width.

Optionally (``context_layers``) a few Transformer layers between the two linear layers let each position see
the others. The paper's projector sees k frames at a time (80 ms for Whisper at k=4); a token spans several
positions, and the frozen encoder's frames alone leave a CTC-aligned projector hearing its own training
sentences with a word error rate of 0.26-0.48 (docs/results/hear, session 10: a 7x wider one fits them no
better; two context layers: 0.18-0.35, session 11). The layers are off by default, so the reference's
checkpoints keep their two layers.

Optionally (``compress``) its outputs are CTC-compressed into token embeddings before the LLM reads them. A
projector aligned by CTC onto the LLM's token embeddings (:mod:`azeros.training.align`) puts one position
near each spoken token's embedding and most others near a learnt *blank*. Read as they are, the blanks sit
between the words like noise tokens, and a small LLM loses the question among them (SmolLM2-135M answers 5
of 24 held-out facts with two filler embeddings after each word of the question, 12 of 24 without).
Compressed, the positions nearer the blank than every token embedding are dropped, a run of positions
nearest the same token becomes one, and each run becomes the LLM's own embeddings weighted by its CTC
posterior (a softmax of the scaled cosines over the whole vocabulary: one token's embedding where the
projector is sure, a mixture where it is not, and differentiable, so the LLM passes still train the
projector). They move to the front of the audio span; the rest of the span is filled with one fixed
embedding (a newline's: trailing whitespace, which the same LLM reads past, 12 of 24). The number of
positions, so everything that renders, batches and caches prompts, stays as it is. Measured on the held-out
split, aligned and never trained through the LLM: runs read as their mean output, 0% of text-only; as
posterior-weighted embeddings, 17%.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ALIGN_SCALE", "CONTEXT_HEAD_DIM", "Projector"]

# The scale of the cosine similarities that CTC alignment trains under; compression reads posteriors with it.
ALIGN_SCALE = 20.0
# Width of one attention head of the context layers.
CONTEXT_HEAD_DIM = 64


class Projector(nn.Module):
    """Maps encoder frames to LLM input embeddings at 1/k of the encoder's frame rate.

    Parameter names (``linear1``, ``linear2``) match the reference checkpoints.

    Args:
        in_dim: encoder frame size d.
        out_dim: the LLM's hidden size H.
        stack: k, the number of consecutive frames concatenated into one position.
        hidden: width of the hidden layer; defaults to ``out_dim`` as in the paper.
        compress: CTC-compress the outputs before the LLM reads them (see the module docstring).
        read_scale: the scale of the cosines in the compressed read-out's posterior (see the module docstring).
        context_layers: Transformer layers over the positions between the two linear layers (see the module
            docstring); ``hidden`` must then be a multiple of :data:`CONTEXT_HEAD_DIM`.

    Raises:
        ValueError: when ``context_layers`` is negative or ``hidden`` is not a multiple of the head width.
    """

    def __init__(self, in_dim: int, out_dim: int, stack: int = 4, hidden: int | None = None,
                 compress: bool = False, read_scale: float = ALIGN_SCALE, context_layers: int = 0) -> None:
        super().__init__()
        self.stack = stack
        hidden = hidden or out_dim
        self.linear1 = nn.Linear(in_dim * stack, hidden)
        self.context = _Context(hidden, context_layers) if context_layers else None
        self.linear2 = nn.Linear(hidden, out_dim)
        # The CTC blank's direction in the LLM's embedding space (trained by align; only a compressing
        # projector has one, so the reference's checkpoints keep their two layers).
        self.blank = nn.Parameter(torch.randn(out_dim) * 0.02) if compress else None
        self.read_scale = read_scale

    def reset_parameters(self) -> None:
        """Draw every weight afresh from the global RNG (a training run seeds it first); the blank too."""
        self.linear1.reset_parameters()
        self.linear2.reset_parameters()
        if self.context is not None:
            self.context.reset_parameters()
        if self.blank is not None:
            nn.init.normal_(self.blank, 0.0, 0.02)

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
        hidden = torch.relu(self.linear1(stacked))  # [b, t/k, hidden]
        counts = lengths // self.stack
        if self.context is not None:
            hidden = self.context(hidden, counts)
        return self.linear2(hidden), counts

    def compress(self, projected: torch.Tensor, counts: torch.Tensor, vocabulary: torch.Tensor,
                 filler: torch.Tensor) -> torch.Tensor:
        """CTC-compress projected positions (see the module docstring); their number stays.

        Args:
            projected: ``[b, n, H]`` from :meth:`forward`.
            counts: ``[b]`` valid positions per utterance.
            vocabulary: ``[V, H]`` the LLM's input embeddings (frozen).
            filler: ``[H]`` the embedding that fills each span after its kept positions.

        Returns:
            ``[b, n, H]``: per utterance, one position per kept run (its posterior-weighted token
            embeddings; gradients reach its outputs), then ``filler`` up to ``n``.

        Raises:
            ValueError: when this projector was built without ``compress``.
        """
        b, n, _ = projected.shape
        out = filler.to(projected.dtype).expand(b, n, -1).clone()
        units = nn.functional.normalize(vocabulary.to(projected.dtype), dim=-1)  # [V, H]
        for row in range(b):
            valid = projected[row, : int(counts[row])]  # [c, H]
            runs = self._run_directions(valid, units)  # [r, H]
            posterior = torch.softmax(self.read_scale * runs @ units.T, dim=-1)  # [r, V]
            out[row, : runs.shape[0]] = posterior @ vocabulary.to(projected.dtype)
        return out

    def heard(self, projected: torch.Tensor, counts: torch.Tensor, vocabulary: torch.Tensor) -> list[list[int]]:
        """The token ids a compressing projector heard: each kept run's most likely token (greedy CTC).

        Args:
            projected: ``[b, n, H]`` from :meth:`forward`.
            counts: ``[b]`` valid positions per utterance.
            vocabulary: ``[V, H]`` the LLM's input embeddings.
        """
        units = nn.functional.normalize(vocabulary.to(projected.dtype), dim=-1)  # [V, H]
        with torch.no_grad():
            return [(self._run_directions(projected[row, : int(counts[row])], units) @ units.T).argmax(-1).tolist()
                    for row in range(projected.shape[0])]

    def _run_directions(self, valid: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
        """``[r, H]`` unit directions of the kept runs of one utterance's outputs ``valid`` ``[c, H]``.

        A position is kept when it is nearer some token embedding than the blank; a run is consecutive kept
        positions nearest the same token (a blank between two equal tokens makes two runs, as in CTC).
        Gradients reach ``valid`` through the runs' sums.

        Raises:
            ValueError: when this projector was built without ``compress``.
        """
        if self.blank is None:
            raise ValueError("this projector was built without compress: it has no CTC blank")
        with torch.no_grad():
            unit = nn.functional.normalize(valid, dim=-1)
            best, token = (unit @ units.T).max(dim=-1)  # [c], [c]
            kept = (unit @ nn.functional.normalize(self.blank, dim=0) < best).nonzero().squeeze(1)  # [m]
            starts = torch.ones_like(kept, dtype=torch.bool)
            starts[1:] = (token[kept[1:]] != token[kept[:-1]]) | (kept[1:] != kept[:-1] + 1)
            run = torch.cumsum(starts.long(), 0) - 1  # [m]
        runs = int(run[-1]) + 1 if kept.numel() else 0
        sums = torch.zeros(runs, valid.shape[1], dtype=valid.dtype, device=valid.device).index_add(0, run, valid[kept])
        return nn.functional.normalize(sums, dim=-1)


class _Context(nn.Module):
    """Pre-norm Transformer layers over projected positions, after a depthwise convolution that gives them
    their relative order (a convolutional position embedding as in wav2vec 2.0, here depthwise with kernel 5:
    +-2 positions).

    Padded positions are zeroed before the convolution (whose own padding is zeros) and masked out of
    attention, so each utterance's outputs are the same alone or in a batch.
    """

    def __init__(self, width: int, layers: int) -> None:
        super().__init__()
        if layers < 0 or width % CONTEXT_HEAD_DIM:
            raise ValueError(f"context layers need a hidden width that is a multiple of {CONTEXT_HEAD_DIM} "
                             f"(got {width}) and a layer count >= 0 (got {layers})")
        self.position = nn.Conv1d(width, width, kernel_size=5, padding=2, groups=width)
        # no dropout: the alignment's resume is exact only with no randomness outside its saved draw
        layer = nn.TransformerEncoderLayer(width, width // CONTEXT_HEAD_DIM, dim_feedforward=2 * width,
                                           dropout=0.0, activation="gelu", batch_first=True, norm_first=True)
        self.layers = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.MultiheadAttention):  # torch's init of its input projection (no public name);
                nn.init.xavier_uniform_(module.in_proj_weight)  # its out_proj is a Linear, reset as one next
                nn.init.zeros_(module.in_proj_bias)
            elif module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, hidden: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
        """``[b, n, width]`` -> ``[b, n, width]``; ``counts`` ``[b]`` valid positions per row."""
        if hidden.shape[1] == 0:  # audio shorter than one stack of frames: nothing to see
            return hidden
        padded = torch.arange(hidden.shape[1], device=hidden.device)[None, :] >= counts.to(hidden.device)[:, None]
        hidden = hidden.masked_fill(padded[..., None], 0.0)  # [b, n, width]
        hidden = hidden + nn.functional.gelu(self.position(hidden.transpose(1, 2)).transpose(1, 2))
        ignored = padded.clone()
        ignored[:, 0] = False  # a row with no valid position would otherwise attend to nothing (NaN)
        return self.layers(hidden, src_key_padding_mask=ignored)
