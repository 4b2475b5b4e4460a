"""The one writer of results: JSON and JSON Lines, with one convention for non-finite
numbers (NaN and inf are written as ``null``, so every file is standard JSON), and the
append-only, resumable per-image store of ``fcrattack reproduce`` and ``fcrattack attack``.

Why JSONL: a batch of records is appended as whole lines, then flushed and fsync'ed, so a
crash or kill can leave at most one partial last line. The reader drops that line (and the
writer truncates it away before appending), so a rerun simply redoes the images it named.
Every record carries a ``key`` = ``experiment/part/model/attack/setting/image id``; a rerun
skips keys already present and never writes one twice.

Data-parallel parts: under ``torchrun`` each rank appends to its own part of a records file
(``records.rank<r>.jsonl`` beside ``records.jsonl``, ``part_file``), and ``merge_parts``
appends the parts' new records to the file and deletes them: the one merge of
``fcrattack reproduce`` (``fcrattack.base.distributed``) and ``fcrattack attack``.

One writer: ``fcrattack.base.lock.WriterLock`` holds an exclusive lock on an output folder
while a command writes into it, so a second run into the same folder is refused instead of
appending a second copy of every record. Reading de-duplicates by key all the same: a folder
written twice by an older version reports each record once.

Packed records: ``ResultStore.pack`` moves every record into ``records.jsonl.gz``
(replaced atomically; gzip without a timestamp, so the same records give the same bytes),
small enough to commit with the code, and a store opened on a folder reads the packed records
first, then the plain file, each key once. A run whose records are committed this way resumes
on a fresh clone and attacks only what is missing.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import math
import os
import secrets
import zlib
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

#: a reader of older records: returns the record in the current form (see ``ResultStore``)
Upgrade = Callable[[dict[str, Any]], dict[str, Any]]

RECORDS = "records.jsonl"
PACKED = RECORDS + ".gz"


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, inf) replaced by None, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, indent: int | None = None) -> str:
    """Standard JSON text of ``value`` (sorted keys; non-finite numbers as null)."""
    return json.dumps(json_safe(value), sort_keys=True, allow_nan=False, indent=indent)


def replace_file(path: str | Path, data: bytes, *, sync: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically: into a new temporary file of a name no other
    write uses (``.<name>.<pid>.<random>.tmp`` beside it, so no file of the user's is ever
    taken for one), then renamed over ``path``; the temporary file is removed when the write
    fails (a process killed while writing leaves it, hidden: no later run can tell it for one
    of its own, so none deletes it). ``sync``: fsync it before the rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with tmp.open("xb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_json(path: str | Path, value: Any) -> Path:
    """Write ``value`` as indented JSON, atomically (``replace_file``)."""
    return replace_file(path, (dumps(value, indent=1) + "\n").encode("utf-8"))


def write_torch(path: str | Path, value: Any) -> Path:
    """``torch.save`` of ``value`` to ``path``, atomically: serialised in memory first, so a
    full or read-only disk is an ``OSError`` naming the file (torch's own writer reports it as
    a RuntimeError of its zip container)."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return replace_file(path, buffer.getvalue())


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write ``rows`` as JSON Lines, atomically."""
    return replace_file(path, "".join(dumps(r) + "\n" for r in rows).encode("utf-8"))


def record_key(
    experiment: str, part: str, model: str, attack: str, setting: str, image_id: str
) -> str:
    """The unique key of one per-image result."""
    return "/".join((experiment, part, model, attack, setting, image_id))


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Complete records of a JSONL file (``.gz``: gzip-compressed), in order; a partial or
    corrupt line is skipped with a warning (only the last line can be partial after a crash)."""
    path = Path(path)
    if not path.is_file():
        return
    packed = path.suffix == ".gz"
    opener: Any = gzip.open if packed else open
    try:
        with opener(path, "rb") as f:
            for number, line in enumerate(f, 1):
                if not line.endswith(b"\n"):
                    log.warning(
                        "%s: dropping partial last line %d (interrupted write)", path, number
                    )
                    return
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):  # not JSON, not UTF-8, digits past the limit
                    log.warning("%s: skipping unreadable line %d", path, number)
                    continue
                if isinstance(record, dict) and isinstance(record.get("key"), str):
                    yield record
                else:
                    log.warning("%s: skipping line %d, not a record with a key", path, number)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        if not packed:
            raise
        raise ValueError(f"{path} is a damaged gzip file of records ({exc})") from None


class ResultStore:
    """The per-image records of one output folder, with resume support. ``upgrade`` reads
    records written in an older form (e.g. ``fcrattack.experiments.machinery.spec.upgrade``):
    applied to every record read, so that callers see one form."""

    def __init__(
        self, out_dir: str | Path, filename: str = RECORDS, *, upgrade: Upgrade | None = None
    ) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / filename  # another name: a rank's part, see .distributed
        self.upgrade = upgrade or (lambda rec: rec)
        if self.path.is_file() and self.path.stat().st_nlink > 1:
            raise ValueError(
                f"{self.path} has other hard links (a copy made with cp -al?): records are "
                "appended in place, so they would change too; copy the folder with cp -a"
            )
        self._truncate_partial_tail()
        self.records: dict[str, dict[str, Any]] = {}
        for path in (self.dir / PACKED, self.path):
            for rec in read_records(path):
                self.records.setdefault(rec["key"], self.upgrade(rec))

    def _truncate_partial_tail(self) -> None:
        """Cut a partial last line off the file so appended lines start on a fresh line."""
        if not self.path.is_file() or self.path.stat().st_size == 0:
            return
        data = self.path.read_bytes()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        log.warning(
            "%s: removing a partial last line (%d bytes) left by an interrupted run",
            self.path,
            len(data) - keep,
        )
        with self.path.open("r+b") as f:
            f.truncate(keep)

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def __len__(self) -> int:
        return len(self.records)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append the records whose key is new (one write, flush and fsync); returns how many."""
        new = [r for r in records if r["key"] not in self.records]
        if not new:
            return 0
        text = "".join(dumps(r) + "\n" for r in new)
        with self.path.open("a", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        for r in new:
            self.records[r["key"]] = r
        return len(new)

    @staticmethod
    def records_of(out_dir: str | Path, upgrade: Upgrade | None = None) -> list[dict[str, Any]]:
        """The records of a folder (packed, then plain; each key once; read by ``upgrade``)
        without opening it for writing."""
        seen: dict[str, dict[str, Any]] = {}
        for path in (Path(out_dir) / PACKED, Path(out_dir) / RECORDS):
            for rec in read_records(path):
                if rec["key"] not in seen:
                    seen[rec["key"]] = upgrade(rec) if upgrade else rec
        return list(seen.values())

    def pack(self) -> Path:
        """Write every record to ``records.jsonl.gz`` (atomically, reproducible bytes) and
        empty the plain file: the records then live in the packed file alone."""
        packed = self.dir / PACKED
        text = "".join(dumps(r) + "\n" for r in self.records.values()).encode("utf-8")
        buffer = io.BytesIO()
        with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, filename="") as gz:
            gz.write(text)
        replace_file(packed, buffer.getvalue(), sync=True)
        if self.path.is_file():  # its records are in the packed file now (read first)
            with self.path.open("r+b") as f:
                f.truncate(0)
        return packed

    def select(self, **fields: Any) -> list[dict[str, Any]]:
        """Records whose fields equal ``fields`` (e.g. experiment="whitebox", model="...")."""
        return [r for r in self.records.values() if all(r.get(k) == v for k, v in fields.items())]


def part_file(filename: str, rank: int) -> str:
    """The records file of one data-parallel rank: ``records.jsonl`` -> ``records.rank3.jsonl``."""
    stem, dot, suffix = filename.partition(".")
    return f"{stem}.rank{rank}{dot}{suffix}"


def part_glob(filename: str) -> str:
    """The glob of every rank's part of ``filename``."""
    return part_file(filename, 0).replace(".rank0", ".rank*", 1)


def merge_parts(
    out_dir: str | Path,
    filename: str = RECORDS,
    *,
    upgrade: Upgrade | None = None,
    listed: Collection[str] | None = None,
) -> ResultStore:
    """Append the records of every rank's part of ``filename`` in ``out_dir`` whose key is new
    to ``filename`` (one fsync'ed write, ``ResultStore.append``), then delete the parts (only
    once their records are safely in the file); returns the merged store (records read by
    ``upgrade``). ``listed``: the only part names that may be merged (those the folder's
    manifest lists: a file of another name is not a run's part), or None: every part."""
    out = Path(out_dir)
    store = ResultStore(out, filename, upgrade=upgrade)
    found = out.glob(part_glob(filename))
    parts = sorted(
        (p for p in found if listed is None or p.name in listed),
        key=lambda p: (len(p.name), p.name),
    )
    store.append(store.upgrade(rec) for p in parts for rec in read_records(p))
    for p in parts:
        p.unlink()
    return store
