"""A cache of frozen-encoder outputs: safetensors shards keyed by cut, one folder per encoder.

The encoders are frozen and run in eval mode, so the frames of an unaugmented utterance never change:
computing them once and reading them back skips the encoder on every later step. Each encoder role gets
``{root}/{role}/`` with ``cache.json`` naming the encoder's fingerprint (a hash of its kind, weights path
and feature settings). If the fingerprint differs, the cache is stale: its shards are deleted and refilled,
never read. A cut's key is its id and where its audio comes from (:func:`cache_key`): two corpora that
both name a cut ``sentence-train-00000`` share a cache folder without ever reading each other's frames. Each
stored tensor is also checked against the encoder's length formula on read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

import torch
from lhotse.cut import Cut
from safetensors import safe_open
from safetensors.torch import save_file

from azeros.models import SpeechEncoder

__all__ = ["EncoderCache", "cache_key"]

logger = logging.getLogger(__name__)

_KEYS = "cut id and audio source"  # what keys mean; written to cache.json: a cache keyed otherwise is stale


def cache_key(cut: Cut) -> str:
    """``{cut id}@{digest}``: the digest of the cut's audio sources (a file's path, size and modification time),
    start, duration and channel. The sampling rate is left out: a resampled cut reads the same audio."""
    parts = [cut.id, repr(cut.start), repr(cut.duration), repr(cut.channel)]
    for source in cut.recording.sources:
        parts += [source.type, repr(source.source)]
        if source.type == "file" and os.path.isfile(source.source):
            stat = os.stat(source.source)
            parts += [str(stat.st_size), str(stat.st_mtime_ns)]
    return f"{cut.id}@{hashlib.sha1(chr(0).join(parts).encode()).hexdigest()[:16]}"


class EncoderCache:
    """Frames of one frozen encoder, by cut (:func:`cache_key`).

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
        self.location: dict[str, Path] = {}  # cache key -> shard file
        self._handles: dict[Path, object] = {}
        self._open_folder()

    def _open_folder(self) -> None:
        meta_file = self.folder / "cache.json"
        if meta_file.is_file():
            stored = json.loads(meta_file.read_text())
            if stored.get("fingerprint") != self.fingerprint or stored.get("keys") != _KEYS:
                logger.warning(
                    "encoder cache %s is stale (built by %s, fingerprint %s, keyed by %s; now %s, %s): rebuilding it",
                    self.folder, stored.get("encoder"), stored.get("fingerprint"), stored.get("keys", "cut id"),
                    self.fingerprint, _KEYS,
                )
                shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        if not meta_file.is_file():
            encoder = {"kind": self.encoder.kind, **self.encoder.config()}
            # written under a name of this process's own, then renamed: another process opening the folder
            # meanwhile (of this run or not) never reads half a file
            staging = meta_file.with_name(f"cache.json.{self.writer_tag}-{os.getpid()}.tmp")
            meta = {"fingerprint": self.fingerprint, "keys": _KEYS, "encoder": encoder}
            staging.write_text(json.dumps(meta, default=str) + "\n")
            staging.replace(meta_file)
        for shard in sorted(self.folder.glob("*.safetensors")):
            with safe_open(shard, "pt") as handle:
                if (handle.metadata() or {}).get("fingerprint") != self.fingerprint:
                    raise ValueError(f"{shard} was written by another encoder than {self.folder}/cache.json says")
                self.location.update(dict.fromkeys(handle.keys(), shard))

    def __contains__(self, cut: Cut) -> bool:
        key = cache_key(cut)
        return key in self.location or key in self.pending

    def get(self, cut: Cut) -> torch.Tensor:
        """The frames ``[t, d]`` of a cached cut, as the encoder reads it (at its sampling rate).

        Raises:
            ValueError: when the stored frame count is not what the encoder gives for the cut's length.
        """
        key = cache_key(cut)
        if key in self.pending:
            frames = self.pending[key]
        else:
            shard = self.location[key]
            if shard not in self._handles:
                self._handles[shard] = safe_open(shard, "pt")
            frames = self._handles[shard].get_tensor(key)
        expected = self.encoder.num_frames(int(cut.num_samples))
        if frames.shape[0] != expected:
            raise ValueError(
                f"encoder cache {self.folder}: cut {cut.id} has {frames.shape[0]} frames, but its audio "
                f"({int(cut.num_samples)} samples) gives {expected}: delete the cache folder"
            )
        return frames

    def put(self, cut: Cut, frames: torch.Tensor) -> None:
        """Add one cut's valid frames ``[t, d]``; a full shard is written at once."""
        self.pending[cache_key(cut)] = frames.detach().to("cpu", torch.float32).contiguous()
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
