"""Paths in an output folder (``fcrattack.base.outputs``): links leading out of it, the
folders a run's files lie in, and files of the user's at paths a run is about to write."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

MANIFEST = "manifest.json"


def refuse_links(folder: Path, paths: Iterable[str]) -> None:
    """Raise ValueError when one of ``paths`` (relative to ``folder``) exists and leads
    outside ``folder`` through a link: writing or reading there would touch what the folder's
    run did not write."""
    root = folder.resolve()
    for rel in sorted(set(paths)):
        path = folder / rel
        real = Path(os.path.realpath(path))  # every link followed, a dangling one too
        if os.path.lexists(path) and real != root and root not in real.parents:
            raise ValueError(
                f"{folder}: {rel} leads outside the output folder, to {real} (a link, or a "
                f"path of {MANIFEST} from / or with ..); fcrattack writes only inside its "
                "folder: replace the link, or choose another output folder"
            )


def refuse_foreign(
    folder: Path,
    files: Sequence[str],
    per_image: tuple[Sequence[str], Sequence[str]],
    ours: set[str],
) -> None:
    """Raise ValueError when a path a run is about to write (``files``, and every pair of
    ``per_image``'s folders and names, relative to ``folder``) holds a file that ``ours`` (the
    paths an earlier run of the folder listed) does not name, a file of the user's, which
    writing would replace; or holds a folder, where no file can be written (a path of ``ours``
    too: a run would fail there after deleting or replacing the earlier one's files)."""

    def taken(rel: str) -> bool:
        path = folder / rel
        if not os.path.lexists(path):
            return False
        return rel not in ours or (path.is_dir() and not path.is_symlink())

    dirs, names = per_image
    found = [f for f in files if taken(f)]
    for d in dirs:
        if (folder / d).is_dir():
            found += [f"{d}/{n}" for n in names if taken(f"{d}/{n}")]
    if found:
        raise ValueError(
            f"{folder}: {found[0]}"
            + (f" (and {len(found) - 1} more)" if len(found) > 1 else "")
            + " is not a file of an fcrattack run, and this run would write there: fcrattack "
            "replaces only files it wrote, so move it away or choose another output folder"
        )


def folders_of(files: Iterable[str], dirs: Iterable[str], names: Iterable[str]) -> list[str]:
    """The folders (relative) that ``files`` and every pair of ``dirs`` and ``names`` lie in."""
    subs = {p.as_posix() for n in names for p in Path(n).parents if p.parts}
    found = {p.as_posix() for f in files for p in Path(f).parents if p.parts}
    return sorted({*found, *dirs, *(f"{d}/{sub}" for d in dirs for sub in subs)})


def inside(path: Path, root: Path) -> bool:
    """Whether ``path``, its links resolved (a dangling last link itself kept), lies in
    ``root``."""
    try:
        real = path.parent.resolve() / path.name if path.is_symlink() else path.resolve()
    except OSError:
        return False
    return real == root or root in real.parents
