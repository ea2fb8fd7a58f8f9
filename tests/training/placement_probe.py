"""``azeros`` under torchrun, recording how much of the LLM's decoder layers each ``Module.to`` moved whole.

Run as ``torchrun ... tests/training/placement_probe.py train RECIPE`` with ``PLACEMENT_PROBE_DIR`` set: each
process writes ``rank{RANK}.json`` there on exit, with the decoder-layer parameters of the LLM (``total``) and
the most that one ``Module.to`` call carried as plain tensors, i.e. not yet sharded by FSDP (``moved_whole``).
"""

from __future__ import annotations

import atexit
import json
import os
import sys
from pathlib import Path

import torch
from torch.distributed.tensor import DTensor
from transformers import GenerationMixin

from azeros.cli import main

record = {"total": 0, "moved_whole": 0}


def _decoder_layer_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The decoder-layer parameters of the causal LMs in ``module`` (the LLM itself or a model holding it)."""
    llms = [m for m in module.modules() if isinstance(m, GenerationMixin)]
    return [p for llm in llms for p in llm.get_decoder().layers.parameters()]


def _recording_to(to):
    def recorded(module: torch.nn.Module, *args, **kwargs):
        layers = _decoder_layer_parameters(module)
        record["total"] = max(record["total"], sum(p.numel() for p in layers))  # a DTensor counts its whole shape
        record["moved_whole"] = max(record["moved_whole"], sum(p.numel() for p in layers if not isinstance(p, DTensor)))
        return to(module, *args, **kwargs)
    return recorded


if __name__ == "__main__":
    torch.nn.Module.to = _recording_to(torch.nn.Module.to)
    out = Path(os.environ["PLACEMENT_PROBE_DIR"]) / f"rank{os.environ['RANK']}.json"
    atexit.register(lambda: out.write_text(json.dumps(record)))
    sys.exit(main(sys.argv[1:]))
