"""One writer per output folder: ``WriterLock``, an exclusive lock that every command writing
a folder takes (``fcrattack.base.outputs.OutputFolder`` for ``attack``, ``cam``, ``demo`` and
``reproduce``; ``fcrattack train`` too), and ``output_dir``, the folder it locks."""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from types import TracebackType
from typing import Any

try:  # POSIX; elsewhere (Windows) a folder is not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

#: the lock file of an output folder (``WriterLock``)
LOCK = ".fcrattack.lock"
#: ``os.open`` refuses a link as the last part of the path (where the OS can say so)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


class WriterLock:
    """An exclusive lock on the output folder ``folder`` (created) for one writer: an
    ``fcntl.flock`` on ``folder/.fcrattack.lock``, which also names the holding process. The
    kernel releases it when the process ends, so a killed run never leaves it stuck; ``close``
    (or leaving the ``with`` block) releases it before, and removes the lock file when this
    lock created it or took it over from a killed run (it held that run's process number),
    so a run (a refused one too) leaves no lock file behind. A file of that
    name holding anything but a process number is not taken for a lock: refused, unchanged.
    A second writer gets a ValueError naming the folder and the process that holds it. Where
    ``fcntl`` is missing (Windows) the folder is not locked."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = output_dir(folder)
        self._file: Any = None
        self._created = False
        if fcntl is None:  # pragma: no cover - Windows
            return
        path = self.folder / LOCK
        while self._file is None:  # again when the file was removed before it was locked
            f, created = _open_lock(path)
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip()
                f.close()
                raise ValueError(
                    f"{self.folder} is being written by another fcrattack run"
                    + (f" (process {holder})" if holder.isdigit() else "")
                    + ": wait for it to finish, or choose another output folder"
                ) from None
            if not _same_file(f, path):  # its holder removed it on closing: not the lock
                f.close()
                continue
            f.seek(0)
            held = "" if created else _lock_text(f)
            if held is None:
                f.close()
                raise ValueError(
                    f"{path} is a file of another program (a lock file of fcrattack holds "
                    "only a process number): move it away, or choose another output folder"
                )
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            self._file, self._created = f, created or bool(held)  # a killed run's: removed

    def close(self) -> None:
        """Release the lock, removing the lock file first when this lock created it (while
        it is held: a writer that opened the file meanwhile sees it gone, ``_same_file``)."""
        if self._file is not None:
            if self._created:
                with contextlib.suppress(OSError):
                    (self.folder / LOCK).unlink()
            self._file.close()  # closing the descriptor releases the flock
            self._file = None

    def __enter__(self) -> WriterLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _lock_text(f: Any) -> str | None:
    """What the open file ``f`` holds where it is what a lock file of fcrattack holds: nothing
    (""), or a process number (that of a run that was killed); None where it is not."""
    try:
        text: str = f.read(64).strip()
    except UnicodeDecodeError:
        return None
    return text if not text or (text.isdigit() and len(text) < 20) else None


def _open_lock(path: Path) -> tuple[Any, bool]:
    """The lock file ``path``, opened for reading and writing, and whether it was created; a
    link there (symbolic, or a file with other hard links) is refused (a ValueError), never
    followed: the lock is written into."""
    if path.is_symlink():
        raise ValueError(
            f"{path} is a link, and fcrattack writes its lock only into a file of its own: "
            "move it away, or choose another output folder"
        )
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | NOFOLLOW, 0o644)
            return os.fdopen(fd, "r+", encoding="utf-8"), True
        except FileExistsError:
            pass
        try:
            fd = os.open(path, os.O_RDWR | NOFOLLOW)
        except FileNotFoundError:  # removed in between: create it
            continue
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # a link made in between
                raise
            raise ValueError(f"{path} is a link: move it away") from None
        if os.fstat(fd).st_nlink > 1:  # a hard link: writing would change the other names
            os.close(fd)
            raise ValueError(
                f"{path} has other hard links, and fcrattack writes its lock only into a file "
                "of its own: move it away, or choose another output folder"
            )
        return os.fdopen(fd, "r+", encoding="utf-8"), False


def _same_file(f: Any, path: Path) -> bool:
    """Whether the open file ``f`` still is the file at ``path``."""
    try:
        here, there = os.fstat(f.fileno()), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def output_dir(path: str | Path) -> Path:
    """``path`` as an output folder, created; an existing file or an empty name (which would
    write into the working directory) is refused."""
    if not str(path).strip():
        raise ValueError("the output folder must be named, got an empty string")
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output folder {out} is an existing file")
    out.mkdir(parents=True, exist_ok=True)
    return out
