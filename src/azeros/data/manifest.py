"""Lhotse manifests in and out: a lazy, tolerant reader and a writer that resumes.

The reader streams ``.jsonl`` / ``.jsonl.gz`` one cut at a time and tolerates a torn last line (what a
killed writer leaves); a broken line anywhere else is an error that names the file and line. Readers that
must account for every line of their input (``generate``, ``infer``) ask for each unreadable line, torn
last line included, as a :class:`BadLine` in its place. It also reads the reference implementation's
manifests unchanged: its target fields may sit directly on the supervision. Their mode is never guessed
from a file's name (a merged or renamed shard would get the wrong one): the caller says it (a recipe's
``mode:``), or :func:`azeros.data.target_of` reads it from the text, or refuses.

The writer appends one cut per line and flushes at once, so a killed process loses at most the items it
had in flight. Reopening a file repairs a torn tail first (a gzip stream cut mid-block cannot be appended
to) and reports which ids it already holds, so a rerun skips them.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from lhotse.cut import Cut
from lhotse.serialization import deserialize_item


__all__ = ["BadLine", "ManifestWriter", "iter_records", "read_cuts"]

logger = logging.getLogger(__name__)

_TARGET_FIELDS = ("response", "instruction", "system", "input_text", "mode", "from_model", "finish_reason",
                  "no_system_turn")


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


@dataclass(frozen=True)
class BadLine:
    """A manifest line that cannot be read, in place of the cut it should have held.

    Attributes:
        path: the manifest.
        number: the 1-based line number.
        reason: why it cannot be read.
    """

    path: Path
    number: int
    reason: str

    @property
    def id(self) -> str:
        """A stable stand-in for the cut id the line lacks (``cuts.jsonl.gz:17``), to account for it as a cut."""
        return f"{self.path.name}:{self.number}"

    def __str__(self) -> str:
        return f"{self.path}:{self.number}: {self.reason}"


class _Scan:
    """The ``(line number, record or BadLine)`` of one file, noting whether it ended cleanly (no torn tail).

    Args:
        path: the file.
        report_tail: give a torn last line (or a gzip stream cut short) as a :class:`BadLine` rather
            than skip it with a warning.
    """

    def __init__(self, path: Path, report_tail: bool = False) -> None:
        self.path = path
        self.report_tail = report_tail
        self.clean = True

    def _parsed(self, number: int, line: str, reason: str = "not valid JSON") -> dict[str, Any] | BadLine:
        try:
            return json.loads(line)
        except json.JSONDecodeError as error:
            return BadLine(self.path, number, f"{reason} ({error})")

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | BadLine]]:
        pending: tuple[int, str] | None = None  # the last line read: it may be torn
        number = 0
        try:
            with _open_text(self.path, "r") as handle:
                for number, line in enumerate(handle, start=1):
                    if pending is not None:
                        yield pending[0], self._parsed(*pending)  # not the last line: a parse error here is real
                    pending = (number, line) if line.strip() else None
        except (EOFError, zlib.error, gzip.BadGzipFile):
            self.clean = False  # a gzip stream cut short: what was decompressed before the cut is kept
            if self.report_tail:
                yield number + 1, BadLine(self.path, number + 1, "the file ends in a torn gzip block")
            else:
                logger.warning("%s ends in a torn gzip block (killed writer?); reading what precedes it", self.path)
        if pending is None:
            return
        record = self._parsed(*pending, reason="torn last line, not valid JSON")
        if isinstance(record, BadLine):
            self.clean = False
            if self.report_tail:
                yield pending[0], record
            else:
                logger.warning("%s: skipping a torn last line", self.path)
            return
        self.clean = self.clean and pending[1].endswith("\n")
        yield pending[0], record


def _records(scan: _Scan) -> Iterator[dict[str, Any]]:
    for _, record in scan:
        if isinstance(record, BadLine):
            raise ValueError(str(record))
        yield record


def iter_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Stream the JSON records of a ``.jsonl`` or ``.jsonl.gz`` file, tolerating a torn last line.

    Args:
        path: the file.

    Yields:
        One dict per complete line.

    Raises:
        ValueError: naming the file and line, for a line before the last that is not JSON.
    """
    yield from _records(_Scan(Path(path)))


def _as_cut(record: dict[str, Any], mode: str | None) -> Cut:
    for supervision in record.get("supervisions", []):
        # Reference records may carry target fields beside the Lhotse ones; Lhotse wants them in custom.
        custom = supervision.get("custom") or {}
        for name in _TARGET_FIELDS:
            if name in supervision:
                custom[name] = supervision.pop(name)
        if mode and "response" in custom and not custom.get("mode"):
            custom["mode"] = mode
        if custom:
            supervision["custom"] = custom
    return deserialize_item(record)


def read_cuts(paths: str | Path | Iterable[str | Path], mode: str | None = None, *,
              bad_lines: bool = False) -> Iterator[Cut | BadLine]:
    """Lazily read cuts from one or more manifests (``.jsonl`` / ``.jsonl.gz``), in order.

    Reference manifests load unchanged: target fields found directly on a supervision are moved under
    ``custom``. (The ``<|truncated|>`` mark is read by :func:`azeros.data.target_of`.)

    Args:
        paths: a manifest or several.
        mode: the mode of every target that does not store one (a reference manifest's, as its user says);
            ``None``: none is assumed.
        bad_lines: yield each line that is not a cut (not JSON, not a Lhotse cut, a torn last line) as a
            :class:`BadLine` in its place, so the caller can account for every line. Otherwise such a
            line raises, except a torn last line, which is skipped with a warning.

    Yields:
        Lhotse cuts (and :class:`BadLine` where asked).

    Raises:
        ValueError: naming the file, line and reason, for a line that is not a cut (without ``bad_lines``).
    """
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        for number, record in _Scan(path, report_tail=bad_lines):
            if not isinstance(record, BadLine):
                try:
                    record = _as_cut(record, mode)
                except Exception as error:  # lhotse rejects a record that is not a cut in many ways
                    record = BadLine(path, number, f"not a Lhotse cut ({type(error).__name__}: {error})")
            if isinstance(record, BadLine) and not bad_lines:
                raise ValueError(str(record))
            yield record


class ManifestWriter:
    """Append-and-flush writer of JSON records (cuts or any dicts with an ``id``) that resumes.

    Opening an existing file keeps every complete record and repairs a torn tail; :attr:`done_ids`
    then lists the ids it holds. Each :meth:`write` reaches the operating system before it returns, so
    ``kill -9`` loses nothing already written.

    Args:
        path: ``.jsonl`` or ``.jsonl.gz``; parent folders are created.
        redo: says which records do not count as done (e.g. failures, which a fixed file may turn into
            results): their ids stay out of :attr:`done_ids`, and such a record is removed, on closing or
            the next opening, once a later record of the same id supersedes it.
    """

    def __init__(self, path: str | Path, redo: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._redo = redo or (lambda record: False)
        self.done_ids: set[str] = set()
        self._redo_ids: set[str] = set()  # ids with a record that a new one would supersede
        self._superseded = False
        if self.path.exists():
            scan = _Scan(self.path)
            records = list(_records(scan))
            kept = self._without_superseded(records)
            self.done_ids = {record["id"] for record in kept if not self._redo(record)}
            self._redo_ids = {record["id"] for record in kept if self._redo(record)}
            if not scan.clean:
                logger.warning("%s: repairing a torn tail, keeping %d complete records", self.path, len(records))
            if not scan.clean or len(kept) < len(records):
                self._rewrite(kept)
        self._handle = _open_text(self.path, "a")

    def _without_superseded(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        later: set[str] = set()
        kept = []
        for record in reversed(records):
            if not (self._redo(record) and record["id"] in later):
                kept.append(record)
            later.add(record["id"])
        return kept[::-1]

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        staging = self.path.with_name(".repair-" + self.path.name)  # same suffix, same compression
        with _open_text(staging, "w") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        os.replace(staging, self.path)  # atomic: a kill during repair leaves the old file intact

    def write(self, item: Cut | dict[str, Any]) -> None:
        """Append one record and flush it to the operating system.

        Args:
            item: a Lhotse cut or a dict with an ``id`` key.
        """
        record = item.to_dict() if isinstance(item, Cut) else item
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()  # gzip: a sync flush, so every finished line is decodable after a kill
        self._superseded |= record["id"] in self._redo_ids
        if self._redo(record):
            self._redo_ids.add(record["id"])
        else:
            self.done_ids.add(record["id"])

    def close(self) -> None:
        """Close the file (a gzip member gets its end marker), without the records superseded since opening."""
        self._handle.close()
        if self._superseded:
            self._rewrite(self._without_superseded(list(_records(_Scan(self.path)))))
            self._superseded = False

    def __enter__(self) -> ManifestWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
