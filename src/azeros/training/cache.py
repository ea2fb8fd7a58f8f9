"""A cache of frozen-encoder outputs: safetensors shards keyed by cut id, one folder per encoder.

The encoders are frozen and run in eval mode, so the frames of an unaugmented utterance never change:
computing them once and reading them back skips the encoder on every later step. Each encoder role gets
``{root}/{role}/`` with ``cache.json`` naming the encoder's fingerprint (a hash of its kind, weights path
and feature settings). If the fingerprint differs, the cache is stale: its shards are deleted and refilled,
never read. Each stored tensor is also checked against the encoder's length formula on read, so a cut whose
audio changed under the same id is caught too.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from azeros.models import SpeechEncoder

__all__ = ["EncoderCache"]

logger = logging.getLogger(__name__)


class EncoderCache:
    """Frames of one frozen encoder, by cut id.

    Args:
        folder: this encoder's cache folder.
        encoder: the encoder (its fingerprint keys the cache, its length formula checks reads).
        shard_items: utterances per shard file.
        writer_tag: added to new shard names so that processes of one run never write the same file.
    """

    def __init__(self, folder: str | Path, encoder: SpeechEncoder, *, shard_items: int = 512, writer_tag: str = "0") -> None:
        self.folder = Path(folder)
        self.encoder = encoder
        self.shard_items = shard_items
        self.writer_tag = writer_tag
        self.fingerprint = encoder.fingerprint()
        self.pending: dict[str, torch.Tensor] = {}
        self.location: dict[str, Path] = {}  # cut id -> shard file
        self._handles: dict[Path, object] = {}
        self._open_folder()

    def _open_folder(self) -> None:
        meta_file = self.folder / "cache.json"
        if meta_file.is_file():
            stored = json.loads(meta_file.read_text())
            if stored.get("fingerprint") != self.fingerprint:
                logger.warning(
                    "encoder cache %s is stale (built by %s, fingerprint %s; now %s): rebuilding it",
                    self.folder, stored.get("encoder"), stored.get("fingerprint"), self.fingerprint,
                )
                shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not meta_file.is_file():
            encoder = {"kind": self.encoder.kind, **self.encoder.config()}
            # written under a name of this process's own, then renamed: another process opening the folder
            # meanwhile (of this run or not) never reads half a file
            staging = meta_file.with_name(f"cache.json.{self.writer_tag}-{os.getpid()}.tmp")
            staging.write_text(json.dumps({"fingerprint": self.fingerprint, "encoder": encoder}, default=str) + "\n")
            staging.replace(meta_file)
        for shard in sorted(self.folder.glob("*.safetensors")):
            with safe_open(shard, "pt") as handle:
                if (handle.metadata() or {}).get("fingerprint") != self.fingerprint:
                    raise ValueError(f"{shard} was written by another encoder than {self.folder}/cache.json says")
                self.location.update(dict.fromkeys(handle.keys(), shard))

    def __contains__(self, cut_id: str) -> bool:
        return cut_id in self.location or cut_id in self.pending

    def get(self, cut_id: str, num_samples: int) -> torch.Tensor:
        """The frames ``[t, d]`` of a cached cut of ``num_samples`` samples.

        Raises:
            ValueError: when the stored frame count is not what the encoder gives for that length.
        """
        if cut_id in self.pending:
            frames = self.pending[cut_id]
        else:
            shard = self.location[cut_id]
            if shard not in self._handles:
                self._handles[shard] = safe_open(shard, "pt")
            frames = self._handles[shard].get_tensor(cut_id)
        expected = self.encoder.num_frames(num_samples)
        if frames.shape[0] != expected:
            raise ValueError(
                f"encoder cache {self.folder}: cut {cut_id} has {frames.shape[0]} frames, but its audio "
                f"({num_samples} samples) gives {expected}; the manifest changed under the same id: "
                "delete the cache folder"
            )
        return frames

    def put(self, cut_id: str, frames: torch.Tensor) -> None:
        """Add one cut's valid frames ``[t, d]``; a full shard is written at once."""
        self.pending[cut_id] = frames.detach().to("cpu", torch.float32).contiguous()
        if len(self.pending) >= self.shard_items:
            self.flush()

    def flush(self) -> None:
        """Write pending frames as a new shard (written under a temporary name, then renamed)."""
        if not self.pending:
            return
        index = len(list(self.folder.glob(f"shard-{self.writer_tag}-*.safetensors")))
        shard = self.folder / f"shard-{self.writer_tag}-{index:05d}.safetensors"
        staging = shard.with_suffix(".tmp")
        save_file(self.pending, staging, metadata={"fingerprint": self.fingerprint})
        staging.rename(shard)  # a killed writer never leaves a half shard under a real name
        self.location.update(dict.fromkeys(self.pending, shard))
        self.pending = {}
