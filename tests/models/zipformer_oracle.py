"""icefall's Zipformer2 from the PyPI package ``zipformer`` (0.1.3), an independent implementation that the
parity tests hold ours against. Test-only: scripts/setup.sh installs it with ``--no-deps``.

``import zipformer`` pulls in torchaudio, atdataset, kaldialign and more, so only the three module files
of the model are imported, under a stand-in package whose ``utils`` has the one name they use.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import torch

from azeros.models.encoders._zipformer2 import ZipformerConfig


def _model_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """The package's ``modules/subsampling.py`` and ``modules/zipformer.py``, imported without its ``__init__``."""
    spec = importlib.util.find_spec("zipformer")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the parity oracle is missing: pip install --no-deps zipformer==0.1.3 (scripts/setup.sh)")
    root = Path(next(iter(spec.submodule_search_locations)))
    package = types.ModuleType("zipformer")
    package.__path__ = [str(root)]
    modules = types.ModuleType("zipformer.modules")
    modules.__path__ = [str(root / "modules")]
    utils = types.ModuleType("zipformer.utils")
    # The package's own signature: its modules call it with only ``enabled=False``.
    utils.torch_autocast = lambda device_type="cuda", **kwargs: torch.amp.autocast(device_type, **kwargs)
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name.split(".")[0] == "zipformer"}
    sys.modules.update({"zipformer": package, "zipformer.modules": modules, "zipformer.utils": utils})
    try:
        return (importlib.import_module("zipformer.modules.subsampling"),
                importlib.import_module("zipformer.modules.zipformer"))
    finally:
        for name in [name for name in sys.modules if name.split(".")[0] == "zipformer"]:
            del sys.modules[name]
        sys.modules.update(saved)


class OracleZipformer(torch.nn.Module):
    """The package's frontend and encoder wired as Auden's ``ZipformerEncoderModel`` wires them."""

    def __init__(self, config: ZipformerConfig) -> None:
        super().__init__()
        subsampling, zipformer = _model_modules()
        # The package compiles its activations with torch.compile unless told it is exporting to ONNX.
        previous = os.environ.get("K2_ONNX_EXPORT")
        os.environ["K2_ONNX_EXPORT"] = "1"
        try:
            self.encoder_embed = subsampling.Conv2dSubsampling(config.feature_dim, config.encoder_dim[0])
            self.encoder = zipformer.Zipformer(
                output_downsampling_factor=config.output_downsampling_factor,
                downsampling_factor=config.downsampling_factor,
                encoder_dim=config.encoder_dim,
                num_encoder_layers=config.num_encoder_layers,
                encoder_unmasked_dim=config.encoder_dim,  # for feature masks, which only training draws
                query_head_dim=config.query_head_dim,
                pos_head_dim=config.pos_head_dim,
                value_head_dim=config.value_head_dim,
                num_heads=config.num_heads,
                feedforward_dim=config.feedforward_dim,
                cnn_module_kernel=config.cnn_module_kernel,
                pos_dim=config.pos_dim,
            )
        finally:
            if previous is None:
                del os.environ["K2_ONNX_EXPORT"]
            else:
                os.environ["K2_ONNX_EXPORT"] = previous
        self.eval()

    @torch.no_grad()
    def forward(self, feats: torch.Tensor, feat_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, lengths = self.encoder_embed(feats, feat_lengths)  # [b, t, d]
        padding = torch.arange(x.shape[1])[None, :] >= lengths[:, None]
        out, out_lengths = self.encoder(x.transpose(0, 1), lengths, padding)  # time-major in the package
        return out.transpose(0, 1), out_lengths


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights far from icefall's initialisation, where some modules start near zero, so that every module
    moves the output: weights ~ 1/sqrt(fan-in), biases ~ 0.5, mixing scales in (0.2, 0.8)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bypass_scale"):
                p.copy_(0.2 + 0.6 * torch.rand(p.shape, generator=generator))
            elif name.endswith("log_scale"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=generator))
            elif p.dim() >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator) / fan_in**0.5)
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=generator))
