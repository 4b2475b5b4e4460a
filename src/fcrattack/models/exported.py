"""Inference-only weights of a training run (``fcrattack train --export``): the checkpoint
without its optimiser state, marked as fcrattack's own export.

The export path is checked before anything is written (``check_export``; the command line
checks it before training starts): its folder must exist and take a new file, it must not be
a folder, nor the run folder or one above it, nor one of the run's own files (its checkpoint,
its lock, a manifest, its ``--init``). An existing file there is replaced only when it is an
earlier export, recognised by the key ``EXPORT_MARK`` that every export holds (read with
``weights_only=True``); anything else is refused, naming the file. The export is written to a
temporary file of its own beside it and renamed over the path
(``fcrattack.base.store.replace_file``), so a failed write leaves an earlier export whole.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..base.lock import LOCK
from ..base.outputs import MANIFEST
from ..base.store import replace_file
from .registry import read_checkpoint

#: the key every export holds (its value: the export format's version)
EXPORT_MARK = "fcrattack_export"
#: the checkpoint a run writes into its folder after every epoch
CHECKPOINT = "last.pt"
#: the keys of a training checkpoint an export keeps
KEPT = ("arch", "state_dict", "num_classes", "mean", "std", "epoch", "config", "test_acc")


def run_files(run: Path) -> tuple[Path, ...]:
    """The files a training run writes into its folder ``run``, and the manifest of a
    command's output folder (``fcrattack.base.outputs``) that the run folder may also be."""
    return (run / CHECKPOINT, run / LOCK, run / MANIFEST)


def is_export(path: str | Path) -> bool:
    """Whether the file ``path`` is an export written by ``export_weights``."""
    try:
        state = read_checkpoint(path)
    except (OSError, ValueError):
        return False
    return isinstance(state, Mapping) and EXPORT_MARK in state


def check_export(dest: str | Path, run: str | Path, keep: Iterable[str | Path] = ()) -> Path:
    """The export path ``dest``, checked before anything is written (module docstring); a
    ValueError naming the problem otherwise.

    Args:
        dest: where the export is to be written.
        run: the run folder (its files are never replaced; it may not exist yet: the run
            creates it).
        keep: other files the export must not replace (e.g. the run's ``--init`` checkpoint).
    """
    if not str(dest).strip():
        raise ValueError("the export path must name a file, got an empty string")
    path = Path(dest)
    target = path.resolve()
    run_folder = Path(run).resolve()
    own = {p.resolve() for p in (*run_files(Path(run)), *map(Path, keep))}
    if target in own:
        raise ValueError(
            f"export path {path} is one of the run's own files (its checkpoint, lock, "
            "manifest or --init): choose another path"
        )
    if target == run_folder or target in run_folder.parents:
        raise ValueError(
            f"export path {path} is the run folder {run} or a folder above it: name a file "
            "outside the run folder"
        )
    if path.is_dir():
        raise ValueError(f"export path {path} is a folder: name a file in it, e.g. {path}/w.pt")
    if path.exists() and not is_export(path):
        raise ValueError(
            f"export path {path} is an existing file that fcrattack did not export: choose "
            "another path (only an earlier export is replaced)"
        )
    folder = target.parent
    if folder == run_folder and not folder.exists():
        return path  # the run creates its folder
    if not path.parent.is_dir():  # as written: the OS walks ``a/../`` only when a/ exists
        raise ValueError(f"export path {path}: folder {path.parent} does not exist")
    try:  # a probe file of our own: permissions alone do not say (root, /proc, read-only)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}.", suffix=".tmp"):
            pass
    except OSError as exc:
        raise ValueError(
            f"export path {path}: cannot write into {path.parent} ({exc.strerror or exc})"
        ) from None
    return path


def export_weights(checkpoint: str | Path, dest: str | Path) -> None:
    """Write a small inference-only copy of a training checkpoint (no optimizer state),
    loadable like the checkpoint (``load_model(dest)``).

    Args:
        checkpoint: the training checkpoint (``OUT/last.pt``).
        dest: the export's path: checked by ``check_export`` (an existing file is replaced
            only when it is an earlier export); a failed write is a ValueError naming it.
    """
    path = check_export(dest, Path(checkpoint).parent, keep=(checkpoint,))
    state = read_checkpoint(checkpoint)
    keep = {k: state[k] for k in KEPT}
    keep["state_dict"] = {k: v.clone() for k, v in keep["state_dict"].items()}
    keep[EXPORT_MARK] = 1
    buffer = io.BytesIO()
    torch.save(keep, buffer)
    try:  # a new temporary file of our own, renamed over the path
        replace_file(path, buffer.getvalue())
    except OSError as exc:
        reason = exc.strerror or exc
        raise ValueError(f"cannot write the exported weights {path}: {reason}") from None
