"""The page of a data-set attack (``index.html``): the per-image state of the first images,
kept under ``page/`` while the run may be resumed, and the page written from it at the end."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .._version import __version__
from ..attacks import Attack, AttackResult
from ..base.store import write_torch
from ..report import image_table, write_page
from .folder import PAGE, page_item

log = logging.getLogger(__name__)


def save_page_item(
    out: Path, position: int, x: torch.Tensor, result: AttackResult, predicted: bool
) -> None:
    """Keep what the page shows of the image at ``position`` (x (3, H, W), the one-image
    ``result`` with the Grad-CAM map of a region attack, whether the label is the model's
    prediction) in ``page/<position>.pt``, so a resumed run can still show it; the folder is
    removed once the page is written (``remove_page_items``)."""
    path = out / page_item(position)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    write_torch(path, {"x": x.clone(), "result": fields, "predicted": predicted})


class Page(NamedTuple):
    """The page's images: x (n, 3, H, W) in [0, 1], ids (n), their one AttackResult (labels
    in ``result.y``, Grad-CAM maps in ``result.cam`` for region attacks) and, per image,
    whether its label is the model's prediction."""

    x: torch.Tensor
    ids: list[str]
    result: AttackResult
    predicted: list[bool]


def load_page(out: Path, ids: Sequence[str], k: int) -> Page | None:
    """The kept page items (``save_page_item``) among the first ``k`` positions of the
    data (``ids``: every image's id, by position), in order; None when there is none. An
    item that is a link or does not read is left out with a warning: the run's records
    are what counts, its page only shows them."""
    items = []
    for i in range(min(k, len(ids))):
        path = out / page_item(i)
        if path.is_symlink():  # not written by the run: never read through
            log.warning("%s is a link: the page leaves its image out", path)
        elif path.is_file():
            try:
                item = torch.load(path, weights_only=True)
                items.append((i, item["x"], AttackResult(**item["result"]), item["predicted"]))
            except Exception as exc:  # damaged or edited: the page is not worth the run
                log.warning("%s does not read (%s): the page leaves its image out", path, exc)
    if not items:
        return None
    try:
        return Page(
            torch.stack([x for _, x, _, _ in items]),
            [ids[i] for i, _, _, _ in items],
            AttackResult.concat([result for _, _, result, _ in items]),
            [bool(predicted) for _, _, _, predicted in items],
        )
    except Exception as exc:  # items of different shapes: edited
        log.warning("%s: the page's kept images do not fit together (%s): no page", out, exc)
        return None


def remove_page_items(out: Path, k: int) -> None:
    """Delete the kept page items of the first ``k`` positions (``page/``) of a finished run,
    and the folder when that leaves it empty: nothing else (a file of the user's keeps it)."""
    for i in range(k):
        (out / page_item(i)).unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        (out / PAGE).rmdir()


def write_attack_page(
    out: Path,
    attack: Attack,
    ids: Sequence[str],
    classes: Sequence[str],
    summary: dict[str, Any],
    k: int,
) -> bool:
    """Write ``out/index.html`` from the kept items of the first ``k`` positions (``ids``:
    every image's id, by position; ``classes``: the data's class names) with the run's
    ``summary``, and remove the items; returns whether a page was written (none without
    kept items)."""
    shown = load_page(out, ids, k) if k else None
    if shown is not None:
        table = image_table(
            out,
            shown.x,
            shown.result.y,
            shown.ids,
            classes,
            {attack.name: shown.result},
            cams=shown.result.cam,
            predicted=shown.predicted,
        )
        label = f" ({attack.label})" if attack.label else ""
        caveat = f"{attack.caveat} " if attack.caveat else ""
        write_page(
            out / "index.html",
            f"fcrattack attack: {attack.name}{label}",
            f"{caveat}{attack!r} on {len(ids)} images; the first {len(shown.ids)} attacked "
            f"are shown. fcrattack {__version__}.",
            {attack.name: summary},
            table,
        )
    remove_page_items(out, min(k, len(ids)))  # the items the run listed
    return shown is not None
