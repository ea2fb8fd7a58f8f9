"""Zipformer2 (icefall's zipformer recipe; Auden's TTA and Auden-Voice encoders), for inference only.

Written here from the published architecture, with icefall's parameter names so that its checkpoints load
strictly. What exists only for training has no parameters and is left out: balancers, whitening, dropout,
layer skipping, feature masks and the ``ScheduledFloat`` schedules that drive them.

Unlike icefall, padding is masked wherever frames meet their neighbours (attention, the convolution
modules, the frontend's ConvNeXt block and the downsamplers), so an utterance's frames are the same in a
padded batch as alone. Tensors are batch-major, ``[b, t, d]`` (icefall runs time-major).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import nn

__all__ = ["Zipformer2Model", "ZipformerConfig", "embed_frames", "output_frames"]

logger = logging.getLogger(__name__)

# Keys of icefall's/Auden's config.json that only shape training; inference reads none of them.
_TRAINING_ONLY_KEYS = frozenset(
    {"model_type", "dropout", "warmup_batches", "encoder_unmasked_dim", "chunk_size", "left_context_frames"}
)
_PER_STACK_FIELDS = (
    "num_encoder_layers", "encoder_dim", "feedforward_dim", "num_heads", "query_head_dim", "value_head_dim",
    "pos_head_dim", "cnn_module_kernel",
)


@dataclass(frozen=True)
class ZipformerConfig:
    """A Zipformer2's shape, under the field names of icefall's and Auden's ``config.json``.

    A stack is a group of layers that runs at one frame rate; per-stack fields hold one value per stack, or
    one value for all. The defaults are the "large" preset of Auden's TTA and Auden-Voice encoders (768-dim
    frames); a ``config.json`` overrides every field it has.
    """

    feature_dim: int = 80
    output_downsampling_factor: int = 2
    downsampling_factor: tuple[int, ...] = (1, 2, 4, 8, 4, 2)
    num_encoder_layers: tuple[int, ...] = (2, 2, 4, 5, 4, 2)
    encoder_dim: tuple[int, ...] = (192, 256, 512, 768, 512, 256)
    feedforward_dim: tuple[int, ...] = (576, 768, 1536, 2304, 1536, 768)
    num_heads: tuple[int, ...] = (4, 4, 4, 8, 4, 4)
    query_head_dim: tuple[int, ...] = (32,)
    value_head_dim: tuple[int, ...] = (12,)
    pos_head_dim: tuple[int, ...] = (4,)
    pos_dim: int = 48
    cnn_module_kernel: tuple[int, ...] = (31, 31, 15, 15, 15, 31)
    causal: bool = False

    def __post_init__(self) -> None:
        num_stacks = len(self.downsampling_factor)
        object.__setattr__(self, "downsampling_factor", tuple(self.downsampling_factor))
        for name in _PER_STACK_FIELDS:
            value = getattr(self, name)
            values = (value,) if isinstance(value, int) else tuple(value)
            if len(values) == 1:
                values *= num_stacks
            if len(values) != num_stacks:
                raise ValueError(f"zipformer config: {name} has {len(values)} values for {num_stacks} stacks")
            object.__setattr__(self, name, values)
        if self.causal:
            raise ValueError("zipformer config: causal (streaming) Zipformers are not supported; TTA and "
                             "Auden-Voice are non-causal")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> ZipformerConfig:
        """Read a ``config.json``'s fields; training-only keys are skipped, unknown ones logged and skipped.

        Raises:
            ValueError: for a config of another model type, or per-stack lists of the wrong length.
        """
        if values.get("model_type", "zipformer") != "zipformer":
            raise ValueError(f"not a zipformer config: model_type {values['model_type']!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - _TRAINING_ONLY_KEYS)
        if unknown:
            logger.warning("zipformer config: ignoring unknown keys %s", ", ".join(unknown))
        return cls(**{k: v for k, v in values.items() if k in known})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def embed_frames(fbank_frames: int | torch.Tensor) -> int | torch.Tensor:
    """Frames after the frontend (~50 Hz): three unpadded 3-frame convolutions, the second with stride 2."""
    return (fbank_frames - 7) // 2


def output_frames(fbank_frames: int | torch.Tensor, output_downsampling_factor: int) -> int | torch.Tensor:
    """Output frames (~25 Hz): the frontend's, then the output downsampler's ceiling division."""
    return _ceil_div(embed_frames(fbank_frames), output_downsampling_factor)


def _ceil_div(n: int | torch.Tensor, d: int) -> int | torch.Tensor:
    return (n + d - 1) // d


def _padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """``[b, t]``, True at the frames after each length."""
    return torch.arange(t, device=lengths.device)[None, :] >= lengths[:, None]


def swoosh_l(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.softplus(x - 4.0) - 0.08 * x - 0.035


def swoosh_r(x: torch.Tensor) -> torch.Tensor:
    # The constant is softplus(-1): SwooshR(0) = 0.
    return nn.functional.softplus(x - 1.0) - 0.08 * x - 0.313261687


def relative_position_encoding(t: int, dim: int, device: torch.device) -> torch.Tensor:
    """``[2t - 1, dim]`` encodings of the offsets ``-(t-1) .. t-1`` (icefall's compact relative encoding).

    Offsets beyond about sqrt(dim) are compressed logarithmically, mapped into (-pi/2, pi/2) by atan and
    expanded in Fourier features, so near offsets stay distinct and far ones blur; the last channel is a
    constant 1 (a bias for the projection). An offset's encoding does not depend on ``t``.
    """
    offsets = torch.arange(-(t - 1), t, device=device, dtype=torch.float32)[:, None]  # [2t-1, 1]
    compression = dim**0.5
    compressed = compression * offsets.sign() * ((offsets.abs() + compression).log() - math.log(compression))
    angles = (compressed / (dim / (2.0 * math.pi))).atan() * torch.arange(1, dim // 2 + 1, device=device)
    encoding = torch.empty(2 * t - 1, dim, device=device)
    encoding[:, 0::2] = angles.cos()
    encoding[:, 1::2] = angles.sin()
    encoding[:, -1] = 1.0
    return encoding


class BiasNorm(nn.Module):
    """Zipformer's LayerNorm: each frame scaled to unit RMS around a learnt bias (the bias enters only the
    scale), times a learnt scalar ``exp(log_scale)``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.log_scale = nn.Parameter(torch.tensor(1.0))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * ((x - self.bias).pow(2).mean(dim=-1, keepdim=True) ** -0.5 * self.log_scale.exp())


class Bypass(nn.Module):
    """A learnt per-channel mix of a block's input and output: ``x_in + (x_out - x_in) * scale``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.bypass_scale = nn.Parameter(torch.full((dim,), 0.5))

    def forward(self, x_in: torch.Tensor, x_out: torch.Tensor) -> torch.Tensor:
        return x_in + (x_out - x_in) * self.bypass_scale


class Downsample(nn.Module):
    """Each ``factor`` consecutive frames averaged with learnt softmax weights; a last partial group is
    completed with copies of the utterance's own last frame (as it is alone), not with the padding after it.
    """

    def __init__(self, factor: int) -> None:
        super().__init__()
        self.factor = factor
        self.bias = nn.Parameter(torch.zeros(factor))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        t_out = _ceil_div(t, self.factor)
        source = torch.arange(t_out * self.factor, device=x.device)[None, :]  # [1, t_out * factor]
        source = torch.minimum(source, (lengths - 1)[:, None])  # [b, t_out * factor]
        x = x.gather(1, source[..., None].expand(-1, -1, d)).view(b, t_out, self.factor, d)
        return (x * self.bias.softmax(dim=0)[:, None]).sum(dim=2)  # [b, t_out, d]


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out_proj(swoosh_l(self.in_proj(x)))


class ConvolutionModule(nn.Module):
    """Gated linear unit, depthwise convolution over time, SwooshR and a projection."""

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, 2 * dim)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x, gate = self.in_proj(x).chunk(2, dim=-1)  # each [b, t, d]
        x = (x * gate.sigmoid()).masked_fill(padding[..., None], 0.0)  # zeros past the end, as alone
        x = self.depthwise_conv(x.transpose(1, 2)).transpose(1, 2)  # [b, t, d]
        return self.out_proj(swoosh_r(x))


class RelPositionAttentionWeights(nn.Module):
    """Multi-head attention weights from content and relative position; three modules of a layer share them.

    The usual 1/sqrt(head dim) is learnt into the projections, so the scores are plain dot products.
    """

    def __init__(self, dim: int, pos_dim: int, num_heads: int, query_head_dim: int, pos_head_dim: int) -> None:
        super().__init__()
        self.num_heads, self.query_head_dim, self.pos_head_dim = num_heads, query_head_dim, pos_head_dim
        self.in_proj = nn.Linear(dim, (2 * query_head_dim + pos_head_dim) * num_heads)
        self.linear_pos = nn.Linear(pos_dim, num_heads * pos_head_dim, bias=False)

    def forward(self, x: torch.Tensor, pos_encoding: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h, dq, dp = self.num_heads, self.query_head_dim, self.pos_head_dim
        q, k, p = self.in_proj(x).split([h * dq, h * dq, h * dp], dim=-1)
        q = q.view(b, t, h, dq).transpose(1, 2)  # [b, h, t, dq]
        k = k.view(b, t, h, dq).transpose(1, 2)  # [b, h, t, dq]
        p = p.view(b, t, h, dp).transpose(1, 2)  # [b, h, t, dp]: each query's position query
        scores = q @ k.transpose(2, 3)  # [b, h, t, t]
        pos = self.linear_pos(pos_encoding).view(2 * t - 1, h, dp).permute(1, 2, 0)  # [h, dp, 2t-1]
        by_offset = p @ pos  # [b, h, t, 2t-1]: query i against every offset -(t-1) .. t-1
        # Key j is at offset j - i from query i: column (t - 1) + j - i.
        column = (t - 1) + torch.arange(t, device=x.device)[None, :] - torch.arange(t, device=x.device)[:, None]
        scores = scores + by_offset.gather(3, column.expand(b, h, t, t))
        scores = scores.masked_fill(padding[:, None, None, :], float("-inf"))  # padded keys get no weight
        return scores.softmax(dim=-1)  # [b, h, t, t]


class SelfAttention(nn.Module):
    """Values mixed by precomputed attention weights."""

    def __init__(self, dim: int, num_heads: int, value_head_dim: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, num_heads * value_head_dim)
        self.out_proj = nn.Linear(num_heads * value_head_dim, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        b, h, t, _ = weights.shape
        v = self.in_proj(x).view(b, t, h, -1).transpose(1, 2)  # [b, h, t, dv]
        return self.out_proj((weights @ v).transpose(1, 2).reshape(b, t, -1))


class NonlinAttention(nn.Module):
    """A tanh-gated projection mixed over time by the first head's attention weights, then gated again: a
    convolution whose kernel is the attention."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, 3 * hidden)
        self.out_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        gate, x, out_gate = self.in_proj(x).chunk(3, dim=-1)  # each [b, t, hidden]
        x = weights @ (x * gate.tanh())  # weights [b, t, t]
        return self.out_proj(x * out_gate)


class ZipformerLayer(nn.Module):
    """One Zipformer2 layer: two half-layers around a mid-layer bypass, sharing one set of attention weights.

    ``bypass_scale`` is in every checkpoint but read by nothing (icefall keeps it, marked for removal).
    """

    def __init__(self, config: ZipformerConfig, stack: int) -> None:
        super().__init__()
        dim, ff_dim, heads = config.encoder_dim[stack], config.feedforward_dim[stack], config.num_heads[stack]
        self.bypass = Bypass(dim)
        self.bypass_mid = Bypass(dim)
        self.bypass_scale = nn.Parameter(torch.full((dim,), 0.5))
        self.self_attn_weights = RelPositionAttentionWeights(
            dim, config.pos_dim, heads, config.query_head_dim[stack], config.pos_head_dim[stack]
        )
        self.self_attn1 = SelfAttention(dim, heads, config.value_head_dim[stack])
        self.self_attn2 = SelfAttention(dim, heads, config.value_head_dim[stack])
        self.feed_forward1 = FeedForward(dim, ff_dim * 3 // 4)
        self.feed_forward2 = FeedForward(dim, ff_dim)
        self.feed_forward3 = FeedForward(dim, ff_dim * 5 // 4)
        self.nonlin_attention = NonlinAttention(dim, 3 * dim // 4)
        self.conv_module1 = ConvolutionModule(dim, config.cnn_module_kernel[stack])
        self.conv_module2 = ConvolutionModule(dim, config.cnn_module_kernel[stack])
        self.norm = BiasNorm(dim)

    def forward(self, x: torch.Tensor, pos_encoding: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        x_in = x
        weights = self.self_attn_weights(x, pos_encoding, padding)  # [b, h, t, t], from the layer's input
        x = x + self.feed_forward1(x)
        x = x + self.nonlin_attention(x, weights[:, 0])
        x = x + self.self_attn1(x, weights)
        x = x + self.conv_module1(x, padding)
        x = x + self.feed_forward2(x)
        x = self.bypass_mid(x_in, x)
        x = x + self.self_attn2(x, weights)
        x = x + self.conv_module2(x, padding)
        x = x + self.feed_forward3(x)
        return self.bypass(x_in, self.norm(x))


class ZipformerStack(nn.Module):
    """The layers of one stack, at the frame rate they are given."""

    def __init__(self, config: ZipformerConfig, stack: int) -> None:
        super().__init__()
        self.pos_dim = config.pos_dim
        self.layers = nn.ModuleList(ZipformerLayer(config, stack) for _ in range(config.num_encoder_layers[stack]))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        padding = _padding_mask(lengths, x.shape[1])  # [b, t]
        pos_encoding = relative_position_encoding(x.shape[1], self.pos_dim, x.device).to(x.dtype)
        for layer in self.layers:
            x = layer(x, pos_encoding, padding)
        return x


class DownsampledStack(nn.Module):
    """A stack run at 1/factor of the frame rate: downsample, the layers, each frame repeated back up, then a
    learnt mix with the stack's input."""

    def __init__(self, config: ZipformerConfig, stack: int) -> None:
        super().__init__()
        self.factor = config.downsampling_factor[stack]
        self.downsample = Downsample(self.factor)
        self.encoder = ZipformerStack(config, stack)
        self.out_combiner = Bypass(config.encoder_dim[stack])

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        y = self.encoder(self.downsample(x, lengths), _ceil_div(lengths, self.factor))  # [b, t / factor, d]
        y = y.repeat_interleave(self.factor, dim=1)[:, : x.shape[1]]  # [b, t, d]
        return self.out_combiner(x, y)


class ConvNeXt(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise_conv = nn.Conv2d(channels, channels, (7, 7), padding=(3, 3), groups=channels)
        self.pointwise_conv1 = nn.Conv2d(channels, 3 * channels, 1)
        self.pointwise_conv2 = nn.Conv2d(3 * channels, channels, 1)

    def forward(self, x: torch.Tensor, padding: torch.Tensor) -> torch.Tensor:
        y = x.masked_fill(padding[:, None, :, None], 0.0)  # the 7-frame kernel sees zeros past the end, as alone
        return x + self.pointwise_conv2(swoosh_l(self.pointwise_conv1(self.depthwise_conv(y))))  # [b, c, t, f]


class ConvEmbed(nn.Module):
    """The frontend (icefall's Conv2dSubsampling): fbank ``[b, T, 80]`` to ``[b, (T-7)//2, dim]`` at 50 Hz."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        # Named by their places in icefall's Sequential, where parameterless training-time modules sat between.
        self.conv = nn.ModuleDict({
            "0": nn.Conv2d(1, 8, 3, padding=(0, 1)),  # time unpadded, frequency padded
            "4": nn.Conv2d(8, 32, 3, stride=2),
            "7": nn.Conv2d(32, 128, 3, stride=(1, 2)),
        })
        self.convnext = ConvNeXt(128)
        self.out = nn.Linear(128 * (((feature_dim - 1) // 2 - 1) // 2), dim)
        self.out_norm = BiasNorm(dim)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = feats[:, None]  # [b, 1, T, 80]
        for conv in self.conv.values():
            x = swoosh_r(conv(x))  # last: [b, 128, (T-7)//2, 19]
        x = self.convnext(x, _padding_mask(lengths, x.shape[2]))
        return self.out_norm(self.out(x.transpose(1, 2).flatten(2)))  # [b, t, dim]


class Zipformer2(nn.Module):
    """The stacks, each fed the previous one's output (channels cut or zero-padded to its width); the output
    takes each channel from the last stack that has it, then is downsampled (x2: 25 Hz)."""

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        self.dims = config.encoder_dim
        self.encoders = nn.ModuleList(
            DownsampledStack(config, i) if factor > 1 else ZipformerStack(config, i)
            for i, factor in enumerate(config.downsampling_factor)
        )
        self.downsample_output = Downsample(config.output_downsampling_factor)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        outputs = []
        for stack, dim in zip(self.encoders, self.dims):
            x = _fit_channels(x, dim)
            x = stack(x, lengths)  # [b, t, dim]
            outputs.append(x)
        return self.downsample_output(_widest_output(outputs), lengths)  # [b, t / factor, max dim]


class Zipformer2Model(nn.Module):
    """Frontend + encoder under icefall's names (``encoder_embed.*``, ``encoder.*``); nothing in it behaves
    differently in training mode."""

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder_embed = ConvEmbed(config.feature_dim, config.encoder_dim[0])
        self.encoder = Zipformer2(config)

    def forward(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode padded fbank ``[b, T, 80]`` of ``feat_lengths`` frames (each at least 9).

        Returns:
            ``(frames, lengths)``: ``[b, t, max(encoder_dim)]`` with zeros after each utterance's
            :func:`output_frames`, and those lengths ``[b]``.
        """
        lengths = embed_frames(feat_lengths)
        x = self.encoder(self.encoder_embed(feats, lengths), lengths)
        out_lengths = output_frames(feat_lengths, self.config.output_downsampling_factor)
        return x.masked_fill(_padding_mask(out_lengths, x.shape[1])[..., None], 0.0), out_lengths


def _fit_channels(x: torch.Tensor, dim: int) -> torch.Tensor:
    if dim <= x.shape[-1]:
        return x[..., :dim]
    return nn.functional.pad(x, (0, dim - x.shape[-1]))


def _widest_output(outputs: Sequence[torch.Tensor]) -> torch.Tensor:
    pieces, width = [outputs[-1]], outputs[-1].shape[-1]
    for out in reversed(outputs[:-1]):
        if out.shape[-1] > width:
            pieces.append(out[..., width:])
            width = out.shape[-1]
    return torch.cat(pieces, dim=-1)
