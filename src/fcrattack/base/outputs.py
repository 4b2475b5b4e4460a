"""The output folder of every command that writes one (``attack``, ``cam``, ``demo``,
``reproduce``): one writer at a time, and fcrattack replaces only what it wrote.

``OutputFolder`` is the one guard. Opening a folder for a command

- locks it (``fcrattack.base.lock.WriterLock``): a second run into it is refused while the
  first runs, a killed run leaves no stale lock, and a refused one no lock file;
- reads its manifest, ``manifest.json``: the command and fcrattack version that wrote the
  folder, whether that run finished, and every path it may write (listed before the first of
  them is written, ``OutputFolder.record``). The manifest decides what the folder holds:

  - no manifest, but a name the command writes is there (``adv/``, ``index.html``,
    ``records.jsonl``, ...): the folder was not made by an fcrattack run (or by one of a
    version without manifests), and is refused; ``overwrite`` does not change that, since
    fcrattack never deletes what it did not write. A command may pass a test that adopts such
    a folder instead (``reproduce``: a ``config.json`` of the form it writes, for committed
    result folders, whose ``manifest.json`` is not committed);
  - the manifest of another command: refused (``cam`` would replace an attack's ``cam/``
    and ``mask/`` PNGs), ``overwrite`` or not;
  - a finished run of the command: refused unless ``overwrite`` (a resumable command decides
    itself, after its own checks: ``attack`` names changed settings, and leaves a finished
    run of the same settings as it is). ``overwrite`` deletes the files the manifest lists
    below the command's entries (and folders left empty), nothing else: a file of the user's
    in ``adv/`` stays, unless a hand-edited manifest lists it. It deletes them when the new
    run records the paths it will write, once they have passed their checks: a new run
    refused there (a file of the user's at one of its paths) leaves the old one whole;
  - an unfinished run: resumed by a resumable command (which checks its own settings, and
    may ``clear`` a run that has no records yet), replaced by the others; a run of another
    fcrattack version is refused unless ``overwrite`` (or the command checks versions itself:
    ``reproduce``, whose experiment configs carry theirs).

Links: an entry the command writes (``adv/``, ``records.jsonl``, ...), or a folder a run's
listed files lie in (``adv/<class>/``), that leads outside the folder through a link is
refused before anything is written or deleted: fcrattack writes only inside its folder.

``OutputFolder.writing`` turns an ``OSError`` of writing into the folder (read-only, full,
over quota) into one ``OutputError`` naming the folder; the records written before it stay
consistent (they are appended only once a batch's files are on disk).
"""

from __future__ import annotations

import errno
import fnmatch
import json
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from .._version import __version__
from .folder_paths import MANIFEST, folders_of, inside, refuse_foreign, refuse_links
from .lock import LOCK, WriterLock, output_dir
from .store import write_json

log = logging.getLogger(__name__)

#: errors of writing whatever the file: a full disk, a quota, a read-only file system
WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}


class OutputError(OSError):
    """The output folder cannot be written (read-only, full, ...): one line naming it."""


class OutputFolder:
    """An output folder opened for one command (module docstring); holds the folder's lock
    until ``close`` (or the end of a ``with`` block).

    Args:
        path: the folder (created; an existing file or an empty name is refused).
        command: the command writing it, e.g. ``"attack"``.
        names: what the command writes at the top of the folder: names, or glob patterns
            such as ``results.rank*.jsonl`` (a folder without a manifest holding one is
            refused).
        overwrite: replace a finished run of the same command (True), or refuse it (False);
            None: the command has no such option (messages do not offer it).
        resumable: an unfinished run of the same command is resumed (else it is replaced).
        same_version: a resumed run must be of this fcrattack version (False: the command
            checks what it resumes itself).
        adopt: a test of a folder without a manifest: whether it holds this command's outputs
            written without one (it is resumed as such; else its entries matching ``names``
            refuse it).

    Attributes: ``dir`` (the folder), ``resumed`` (a run of this command is there to
    continue), ``finished`` (that run finished: a resumable command decides itself, after its
    own checks).
    """

    def __init__(
        self,
        path: str | Path,
        command: str,
        *,
        names: Sequence[str],
        overwrite: bool | None = False,
        resumable: bool = False,
        same_version: bool = True,
        adopt: Callable[[Path], bool] | None = None,
    ) -> None:
        self.command, self.path, self.names = command, Path(path), tuple(names)
        with self.writing():
            self.dir = output_dir(path)
            self.lock = WriterLock(self.dir)
        try:
            self.previous = self._read()
            self.replaced: dict[str, Any] | None = None  # a run ``record`` deletes first
            self.resumed = self.finished = False
            with self.writing():
                self._check(names, overwrite, resumable and same_version, resumable, adopt)
        except BaseException:
            self.close()
            raise

    def _read(self) -> dict[str, Any] | None:
        path = self.dir / MANIFEST
        if not path.is_file():
            return None
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not an fcrattack manifest ({exc})") from None
        per_image = found.get("per_image") if isinstance(found, dict) else None
        lists = [found.get("files", [])] if isinstance(found, dict) else []
        if isinstance(per_image, dict):
            lists += [per_image.get(k, []) for k in ("dirs", "names")]
        if (
            not isinstance(found, dict)
            or not isinstance(found.get("command"), str)
            or not isinstance(per_image or {}, dict)
            or not all(isinstance(v, list) and all(isinstance(p, str) for p in v) for v in lists)
        ):
            raise ValueError(f"{path} is not an fcrattack manifest (it was edited)")
        return found

    def _check(
        self,
        names: Sequence[str],
        overwrite: bool | None,
        versioned: bool,
        resumable: bool,
        adopt: Callable[[Path], bool] | None,
    ) -> None:
        old = self.previous
        was = (old or {}).get("per_image") or {}
        wrote = folders_of((old or {}).get("files", []), was.get("dirs", []), was.get("names", []))
        # before anything is deleted: the entries it names, and the folders a run wrote in
        self._refuse_links([p.name for p in self._matching(names)] + wrote)
        advice = "choose another output folder" + (
            " or pass --overwrite (overwrite=True) to replace it" if overwrite is not None else ""
        )
        if old is None:
            if adopt is not None and adopt(self.dir):
                log.info("%s: a folder of fcrattack %s, without a manifest", self.dir, self.command)
                self.resumed = True
                return
            found = self._found(names)
            if found:
                raise ValueError(
                    f"{self.dir} holds {', '.join(found)}, and no {MANIFEST} of an fcrattack "
                    "run that wrote them: fcrattack replaces only files it wrote, so choose "
                    "another output folder (or move them away yourself)"
                )
            return
        what = f"`fcrattack {old['command']}` (fcrattack {old.get('fcrattack', '?')})"
        if old["command"] != self.command:
            raise ValueError(
                f"{self.dir} holds the outputs of {what}; fcrattack {self.command} would mix "
                "its files with them: choose another output folder"
            )
        if overwrite:
            self.clear()
        elif old.get("finished") and not resumable:
            raise ValueError(f"{self.dir} holds a finished run of {what}; {advice}")
        elif not resumable:
            log.info("%s: replacing an unfinished run of %s", self.dir, what)
            self.clear()
        elif versioned and old.get("fcrattack") != __version__:
            raise ValueError(
                f"{self.dir} holds a run of {what}; this is fcrattack {__version__}, and a run "
                f"is resumed only by the version that began it (their results would mix): "
                f"{advice}"
            )
        else:
            self.resumed, self.finished = True, bool(old.get("finished"))

    def _matching(self, names: Sequence[str]) -> list[Path]:
        """The entries of the folder that match ``names``."""
        entries = [p for p in sorted(self.dir.iterdir()) if p.name != LOCK]
        return [p for p in entries if any(fnmatch.fnmatchcase(p.name, n) for n in names)]

    def _found(self, names: Sequence[str]) -> list[str]:
        """The entries of the folder that match ``names`` (folders shown with a /)."""
        return [p.name + ("/" if p.is_dir() else "") for p in self._matching(names)]

    def _refuse_links(self, paths: Iterable[str]) -> None:
        """``refuse_links`` of this folder."""
        refuse_links(self.dir, paths)

    def listed(self) -> list[str]:
        """Every path the folder's manifest lists (relative), the manifest itself last."""
        return _listed(self.previous or {})

    def clear(self) -> None:
        """Replace the run in the folder: the next ``record`` deletes the files its manifest
        lists, once the paths the new run writes have passed their checks (a run refused
        before it writes leaves the old one whole)."""
        if self.previous is not None:
            self.replaced = self.previous
        self.previous, self.resumed, self.finished = None, False, False

    def _delete(self, manifest: dict[str, Any]) -> None:
        """Delete the files ``manifest`` lists, and the folders that leaves empty; nothing
        else. A listed path that leads outside the folder (``..``, a link) or that is not
        below an entry the command writes (``names``: a manifest edited by hand, or of
        another tool) is kept, with a warning."""
        root = self.dir.resolve()
        folders: set[Path] = set()
        with self.writing():
            for rel in _listed(manifest):
                path, parts = self.dir / rel, Path(rel).parts or ("",)
                own = rel == MANIFEST or any(fnmatch.fnmatchcase(parts[0], n) for n in self.names)
                if ".." in parts or not own or not inside(path, root):
                    log.warning("%s: not deleting %s, which fcrattack does not write", root, rel)
                    continue
                if path.is_symlink() or path.is_file():
                    path.unlink()
                folders.update(p for p in Path(rel).parents if p.parts)
            for folder in sorted(folders, key=lambda p: len(p.parts), reverse=True):
                path = self.dir / folder
                if inside(path, root) and path.is_dir() and not path.is_symlink():
                    with suppress(OSError):  # only an empty one: a user's file keeps it
                        path.rmdir()

    def record(
        self,
        files: Iterable[str],
        per_image: tuple[Sequence[str], Sequence[str]] | None = None,
        *,
        finished: bool = False,
    ) -> None:
        """Write the manifest: ``files`` (relative paths) and ``per_image`` (folders, names:
        every folder/name pair) that the run may write, together with what a resumed run's
        manifest listed; call it before writing any of them."""
        old = self.previous if self.resumed and self.previous else {}
        dirs, names = per_image or ((), ())
        files = list(files)
        self._refuse_links(folders_of(files, dirs, names))
        ours = self.listed() if old else _listed(self.replaced) if self.replaced else []
        refuse_foreign(self.dir, files, (dirs, names), set(ours))
        if self.replaced is not None:
            self._delete(self.replaced)
            self.replaced = None
        before = old.get("per_image") or {}
        manifest = {
            "command": self.command,
            "fcrattack": __version__,
            "finished": finished,
            "files": sorted({*old.get("files", []), *files}),
            "per_image": {
                "dirs": sorted({*before.get("dirs", []), *dirs}),
                "names": list(dict.fromkeys([*before.get("names", []), *names])),
            },
        }
        with self.writing():
            write_json(self.dir / MANIFEST, manifest)
        self.previous, self.resumed = manifest, True

    def finish(self) -> None:
        """Mark the run finished (a rerun is then refused unless ``overwrite``, or left as it
        is by a resumable command)."""
        old = self.previous or {}
        per_image = old.get("per_image") or {}
        self.record(
            old.get("files", []),
            (per_image.get("dirs", []), per_image.get("names", [])),
            finished=True,
        )

    def writing(self) -> AbstractContextManager[None]:
        """``writing`` into this folder."""
        return writing(self.path)

    def close(self) -> None:
        """Release the folder's lock."""
        lock = getattr(self, "lock", None)
        if lock is not None:
            lock.close()

    def __enter__(self) -> OutputFolder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _listed(manifest: dict[str, Any]) -> list[str]:
    """Every path ``manifest`` lists (relative), the manifest itself last."""
    per_image = manifest.get("per_image") or {}
    paths = list(manifest.get("files", []))
    paths += [f"{d}/{n}" for d in per_image.get("dirs", []) for n in per_image.get("names", [])]
    return [*paths, MANIFEST]


@contextmanager
def writing(folder: str | Path) -> Iterator[None]:
    """Raise an ``OSError`` of writing into ``folder`` (``_about``) as one ``OutputError``
    naming the folder; other errors pass unchanged."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        if not _about(exc, Path(folder)):
            raise
        name = f" ({exc.filename})" if exc.filename else ""
        error = OutputError(
            f"cannot write to the output folder {folder}: "
            f"{exc.strerror or type(exc).__name__}{name}"
        )
        error.errno = exc.errno
        raise error from exc


def _about(exc: OSError, folder: Path) -> bool:
    """Whether ``exc`` is an error of writing into ``folder``: a write-only errno, or a file
    inside the folder, the folder itself or a folder above it (which could not be created)."""
    if exc.errno in WRITE_ERRNOS:
        return True
    if not exc.filename:
        return False
    try:
        target = Path(os.fsdecode(exc.filename)).absolute()
        root = folder.absolute()
    except (TypeError, ValueError):
        return False
    return target == root or root in target.parents or target in root.parents
