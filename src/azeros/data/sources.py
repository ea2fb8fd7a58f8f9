"""Which manifests to read: a YAML list of datasets, or a single manifest.

The YAML is a list of entries like the reference's::

    - name: commonvoice_en
      manifest: data/cv_en/cuts_train.jsonl.gz
      language: en        # the reference's ``lang`` is read too
      weight: 2.0         # sampling weight when mixing for training; ``hours`` is accepted and ignored

Unlike the reference, the language given here does not overwrite a language the cuts already state: it
fills in where they are silent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["DatasetSpec", "load_datasets"]


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of a generation or training run.

    Attributes:
        name: a short name; outputs go to ``{out}/{name}/``.
        manifest: the Lhotse CutSet manifest.
        language: the language of cuts that do not state one (``None``: English where needed).
        weight: the sampling weight when datasets are mixed.
    """

    name: str
    manifest: Path
    language: str | None = None
    weight: float = 1.0


def load_datasets(source: str | Path) -> list[DatasetSpec]:
    """Read a YAML list of datasets, or wrap a single manifest as one dataset.

    Args:
        source: a ``.yaml``/``.yml`` file, or a manifest (``.jsonl``/``.jsonl.gz``) whose name (without
            suffixes) becomes the dataset name. Relative manifest paths in a YAML file are relative to it.

    Returns:
        The datasets, in the order listed.

    Raises:
        ValueError: on an entry without ``name`` or ``manifest``, or a duplicate name.
    """
    path = Path(source)
    if path.suffix not in (".yaml", ".yml"):
        return [DatasetSpec(path.name.split(".")[0], path)]
    entries = yaml.safe_load(path.read_text()) or []
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of datasets, got {type(entries).__name__}")
    specs = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("name") or not entry.get("manifest"):
            raise ValueError(f"{path}: entry {index} needs at least `name` and `manifest`: {entry!r}")
        manifest = Path(entry["manifest"])
        specs.append(DatasetSpec(
            name=str(entry["name"]),
            manifest=manifest if manifest.is_absolute() else path.parent / manifest,
            language=entry.get("language", entry.get("lang")),
            weight=float(entry.get("weight", 1.0)),
        ))
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: dataset names must be unique, got {names}")
    return specs
