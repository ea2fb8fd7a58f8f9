"""Data layer: typed views of Lhotse cuts, lazy tolerant reading, a resumable writer, dataset lists."""

from azeros.data.cuts import (
    ANY_DURATION,
    LABEL_KEYS,
    REFERENCE_SYSTEM_MESSAGE,
    TRUNCATION_MARK,
    Target,
    Utterance,
    cut_audio,
    infer_mode,
    target_conversation,
    target_of,
    with_target,
)
from azeros.data.manifest import BadLine, ManifestWriter, iter_records, read_cuts
from azeros.data.sources import DatasetSpec, load_datasets

__all__ = [
    "ANY_DURATION",
    "LABEL_KEYS",
    "REFERENCE_SYSTEM_MESSAGE",
    "TRUNCATION_MARK",
    "BadLine",
    "DatasetSpec",
    "ManifestWriter",
    "Target",
    "Utterance",
    "cut_audio",
    "infer_mode",
    "iter_records",
    "load_datasets",
    "read_cuts",
    "target_conversation",
    "target_of",
    "with_target",
]
