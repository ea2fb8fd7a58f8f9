"""Data layer: typed views of Lhotse cuts, lazy tolerant reading, a resumable writer, dataset lists."""

from azeros.data.cuts import (
    LABEL_KEYS,
    REFERENCE_SYSTEM_MESSAGE,
    TRUNCATION_MARK,
    Target,
    Utterance,
    infer_mode,
    target_conversation,
    target_of,
    with_target,
)
from azeros.data.manifest import ManifestWriter, iter_records, read_cuts
from azeros.data.sources import DatasetSpec, load_datasets

__all__ = [
    "LABEL_KEYS",
    "REFERENCE_SYSTEM_MESSAGE",
    "TRUNCATION_MARK",
    "DatasetSpec",
    "ManifestWriter",
    "Target",
    "Utterance",
    "infer_mode",
    "iter_records",
    "load_datasets",
    "read_cuts",
    "target_conversation",
    "target_of",
    "with_target",
]
