"""What a folder of images holds, labelled, before anything is decoded: ``ImageList``.

Three layouts are understood:

- class folders ``root/<class>/*``: each folder is matched to the model's class names
  (``match_classes``: the name, a WordNet id, or an index; case, ``_`` and ``-`` ignored),
  or labelled by sorted folder order when no class names are known;
- a flat folder with a label file (``labels=FILE``: CSV ``file,label`` or JSON ``{file: label}``
  / ``[{"file": ..., "label": ...}]``, labels as class indices or names);
- a flat folder without labels (``labels="pred"``): every label is -1, "the model's own
  prediction", resolved by whoever runs the model (``fcrattack.app.attack_dataset.attack_dataset``).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..base.validation import read_json, read_text
from .dataset import Dataset, select
from .decode import IMAGE_EXTENSIONS, Transform, read_images

log = logging.getLogger(__name__)

#: the label of an image whose class is unknown: attacked as the model's prediction
PREDICTED = -1


@dataclass(frozen=True)
class ImageList:
    """Image files to be read: ``paths`` (N) with ``labels`` (N, class indices, or
    ``PREDICTED``), ``ids`` (N, paths relative to the data root, used as output names),
    the label space ``classes`` (names) and the ``transform`` each image gets after decoding
    (e.g. ``fcrattack.data.resize_center_crop``; None: images must share one size)."""

    paths: list[Path]
    labels: list[int]
    ids: list[str]
    classes: list[str]
    transform: Transform | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index: Sequence[int]) -> ImageList:
        """The files at integer positions ``index``, in that order."""
        return replace(
            self,
            paths=[self.paths[i] for i in index],
            labels=[self.labels[i] for i in index],
            ids=[self.ids[i] for i in index],
        )

    def select(self, n: int | None, seed: int | None) -> ImageList:
        """The first ``n`` files (seed None) or a seeded random ``n`` (original order kept)."""
        return self.subset(select(len(self), n, seed))

    def read(self, *, uint8: bool = False, workers: int = 8) -> Dataset:
        """Decode every file into memory: float32 [0, 1] (or uint8) images (N, 3, H, W);
        unreadable files are skipped with a warning and listed in ``Dataset.skipped``."""
        import torch

        images, kept, skipped = read_images(self.paths, self.transform, workers)
        labels = torch.tensor([self.labels[i] for i in kept], dtype=torch.int64)
        return Dataset(
            images if uint8 else images.float().div_(255),
            labels,
            [self.ids[i] for i in kept],
            list(self.classes),
            skipped,
        )


def _key(name: str) -> str:
    """Names compared without case, ``_``/``-`` and repeated spaces: 'Golden_Retriever' ==
    'golden retriever'."""
    return re.sub(r"[\s_\-]+", " ", name).strip().lower()


def match_classes(
    names: Sequence[str], classes: Sequence[str], wnids: Sequence[str] | None = None
) -> list[int]:
    """The class index of each folder or label name in ``names``: an exact or normalised class
    name, a WordNet id of ``wnids``, or a whole number in range. A name matching nothing, or
    two classes (ImageNet has two "crane"s), is an error naming it."""
    by_key: dict[str, set[int]] = {}
    exact: dict[str, set[int]] = {}
    for i, c in enumerate(classes):
        by_key.setdefault(_key(c), set()).add(i)
        exact.setdefault(c, set()).add(i)
    by_wnid = {w: i for i, w in enumerate(wnids or [])}
    out = []
    for name in names:
        if name in by_wnid:
            out.append(by_wnid[name])
            continue
        found = exact.get(name) or by_key.get(_key(name), set())
        if len(found) > 1:
            raise ValueError(
                f"class {name!r} names {len(found)} of the model's classes "
                f"({sorted(found)}): use a class index{' or WordNet id' if wnids else ''}"
            )
        if found:
            out.append(next(iter(found)))
        elif name.isascii() and name.isdigit() and int(name) < len(classes):
            out.append(int(name))
        else:
            shown = ", ".join(list(classes)[:10]) + (", ..." if len(classes) > 10 else "")
            raise ValueError(
                f"class {name!r} is not one of the model's {len(classes)} classes ({shown})"
                + (" nor a WordNet id" if wnids else "")
            )
    return out


def visible(folder: Path) -> list[Path]:
    """The entries of ``folder`` whose names do not start with a dot (hidden files and
    folders, e.g. ``.DS_Store`` or ``._photo.jpg``, are never read), sorted; names that are
    not UTF-8 (ids and output names are written as UTF-8) are skipped with a warning naming
    them."""
    entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    bad = [p for p in entries if not _utf8(p.name)]
    if bad:
        shown = ", ".join(ascii(p.name) for p in bad[:5]) + (", ..." if len(bad) > 5 else "")
        log.warning(
            "%s: skipping %d entries whose names are not UTF-8 (rename them to read them): %s",
            ascii(str(folder)),
            len(bad),
            shown,
        )
    return [p for p in entries if _utf8(p.name)]


def _utf8(name: str) -> bool:
    """Whether a file name is UTF-8 text (Python holds other bytes as lone surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def list_images(folder: Path) -> list[Path]:
    """The visible image files directly inside ``folder`` (by extension), sorted; a link whose
    target is missing is listed too, so that reading it fails and it is named as unreadable
    instead of being left out unsaid."""
    return [
        p
        for p in visible(folder)
        if (p.is_file() or (p.is_symlink() and not p.exists()))
        and p.suffix.lower() in IMAGE_EXTENSIONS
    ]


def list_class_folders(
    root: str | Path,
    *,
    classes: Sequence[str] | None = None,
    wnids: Sequence[str] | None = None,
    transform: Transform | None = None,
) -> ImageList:
    """``root/<class>/*``, each folder matched to ``classes`` (the model's class names, see
    ``match_classes``); without ``classes``, labels follow the sorted folder names."""
    root = Path(root)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "not found"
        raise FileNotFoundError(f"data folder {root} {what}")
    folders = [p.name for p in visible(root) if p.is_dir()]
    if not folders:
        raise ValueError(f"no class folders in {root}")
    if classes is None:
        log.info("labels by sorted folder order: no class names were given")
        label_of = dict(zip(folders, range(len(folders))))
        names = folders
    else:
        label_of = dict(zip(folders, match_classes(folders, classes, wnids)))
        names = list(classes)
    paths: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        files = list_images(root / folder)
        paths += files
        labels += [label_of[folder]] * len(files)
    if not paths:
        raise ValueError(f"no image files under {root}")
    ids = [str(p.relative_to(root)) for p in paths]
    return ImageList(paths, labels, ids, names, transform)


class _Pairs(list):
    """A JSON object as its (key, value) pairs in order, duplicate keys kept."""


#: a label file's row: key (file), label (text), where it is ("line 3", "entry 2")
Row = tuple[str, str, str]


def _label_rows(path: Path) -> list[Row]:
    """The rows of a label file (``read_label_file``), in order, duplicates kept."""
    text = read_text(path, "label file")
    if path.suffix.lower() == ".json":
        data: Any = read_json(text, path, "label file", object_pairs_hook=_Pairs)
        if isinstance(data, _Pairs):
            lines = _key_lines(text, [str(k) for k, _ in data])
            return [(str(k), str(v), where) for (k, v), where in zip(data, lines)]
        if isinstance(data, list) and all(
            isinstance(r, _Pairs) and {"file", "label"} <= dict(r).keys() for r in data
        ):
            return [
                (str(dict(r)["file"]), str(dict(r)["label"]), f"entry {i}")
                for i, r in enumerate(data, 1)
            ]
        raise ValueError(
            f"{path}: expected {{file: label}} or a list of {{'file': ..., 'label': ...}}"
        )
    reader = csv.reader(io.StringIO(text))
    rows = [(r, f"line {reader.line_num}") for r in reader if r and any(c.strip() for c in r)]
    if rows and [c.strip().lower() for c in rows[0][0][:2]] == ["file", "label"]:
        rows = rows[1:]
    bad = [(r, where) for r, where in rows if len(r) != 2]
    if bad:  # a third column could be the rest of an unquoted label holding a comma
        raise ValueError(
            f"{path}: rows need exactly 'file,label' (quote a label that holds a comma: "
            f'0.png,"tench, Tinca tinca"), got {bad[0][0]} ({bad[0][1]})'
        )
    return [(r[0].strip(), r[1].strip(), where) for r, where in rows]


def _key_lines(text: str, keys: list[str]) -> list[str]:
    """Where each key of a JSON object's text is: "line N" when the keys are found in order
    as written, else "entry N"."""
    found = [
        (json.loads(m.group(1)), text.count("\n", 0, m.start()) + 1)
        for m in re.finditer(r'("(?:[^"\\]|\\.)*")\s*:', text)
    ]
    if [k for k, _ in found] == keys:
        return [f"line {line}" for _, line in found]
    return [f"entry {i}" for i in range(1, len(keys) + 1)]


def _unique(rows: list[Row], path: Path, file_of: Any = str) -> dict[str, str]:
    """file -> label of ``rows``; two rows naming one file (``file_of`` of their keys) are
    refused, naming both (a later row silently replacing a label would mislabel an image)."""
    first: dict[str, Row] = {}
    for row in rows:
        name = file_of(row[0])
        if name in first:
            key, label, where = first[name]
            twice = (
                f"{key!r} is given twice ({where}: label {label!r}; {row[2]}: label {row[1]!r})"
                if key == row[0]
                else f"{key!r} ({where}) and {row[0]!r} ({row[2]}) name the same file {name!r}"
            )
            raise ValueError(f"label file {path}: {twice}: give each image one label")
        first[name] = row
    return {name: row[1] for name, row in first.items()}


def _label_file(path: str | Path) -> Path:
    """``path``, a label file that exists and is a regular file; FileNotFoundError if not."""
    path = Path(path)
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "not found"
        raise FileNotFoundError(f"label file {path} {what}")
    return path


def read_label_file(path: str | Path) -> dict[str, str]:
    """file -> label (text) from a CSV (``file,label`` rows, an optional header) or a JSON file
    (``{file: label}`` or a list of ``{"file": ..., "label": ...}``), UTF-8. A file named
    twice is refused, naming both lines (or entries)."""
    path = _label_file(path)
    return _unique(_label_rows(path), path)


def list_flat_folder(
    root: str | Path,
    *,
    labels: str | Path | None = "pred",
    classes: Sequence[str] | None = None,
    wnids: Sequence[str] | None = None,
    transform: Transform | None = None,
) -> ImageList:
    """The images directly inside ``root``, labelled by ``labels``: "pred" (each image is
    attacked as the class the model predicts, label ``PREDICTED``) or a label file
    (``read_label_file``, keyed by file name: a folder in a key is ignored; labels matched
    to ``classes``; files it misses are an error, keys of no image a warning)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    paths = list_images(root)
    if not paths:
        folders = any(p.is_dir() for p in visible(root))
        raise ValueError(
            f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {root}"
            + (
                ": it holds folders, which are read as class folders when no labels are given "
                "(--labels FILE|pred on the command line, labels= in Python)"
                if folders
                else ""
            )
        )
    ids = [p.name for p in paths]
    names = list(classes or [])
    if labels is None or labels == "pred":
        return ImageList(paths, [PREDICTED] * len(paths), ids, names, transform)
    # keys may carry a folder ("photos/a.jpg"): the file name is what a flat folder holds,
    # and two keys of one file name are refused
    path = _label_file(labels)
    table = _unique(_label_rows(path), path, lambda k: Path(k).name)
    missing = [i for i in ids if i not in table]
    if missing:
        raise ValueError(
            f"label file {labels} has no label for {len(missing)} of the {len(ids)} images "
            f"in {root} (e.g. {missing[0]!r})"
        )
    extra = sorted(set(table) - set(ids))
    if extra:  # a typo, or a file that moved: said, since its label goes unused
        log.warning(
            "label file %s names %d file(s) that are not images in %s (e.g. %r): ignored",
            labels,
            len(extra),
            root,
            extra[0],
        )
    given = [table[i] for i in ids]
    if classes is None:
        if not all(g.isascii() and g.isdigit() for g in given):
            raise ValueError(
                f"label file {labels} names classes, but the model has no class names: "
                "use class indices"
            )
        return ImageList(paths, [int(g) for g in given], ids, names, transform)
    return ImageList(paths, match_classes(given, classes, wnids), ids, names, transform)
