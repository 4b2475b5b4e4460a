"""The attack step of a data-set attack: one batch's labels and targets, the attack, its
records and the PNG writes to do."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from ..attacks import Attack, AttackResult
from ..data import Dataset
from ..metrics import perturbation_norms, quantize_uint8
from ..viz.images import display_factor, save_png
from .commit import write_region
from .labels import Target, batch_labels
from .page import save_page_item


def as_saved(result: AttackResult, x: torch.Tensor) -> AttackResult:
    """``result`` with the images its PNGs will hold (x_adv rounded to 8 bits) and their norms
    against the clean images x (N, C, H, W) in [0, 1]: the records describe the saved files.
    ``success`` stays the attack's own; ``success_uint8`` is the PNG's. Unchanged where the
    attack optimised on the 8-bit grid (``quantize=True``, the command line's default)."""
    saved = quantize_uint8(result.x_adv)
    if torch.equal(saved, result.x_adv):
        return result
    return dataclasses.replace(result, x_adv=saved, norms=perturbation_norms(x, saved))


def attack_batch(
    attack: Attack,
    batch: Dataset,
    positions: list[int],
    target: Target,
    out: Path,
    names: list[Path],
    page: int,
) -> tuple[list[Callable[[], Any]], list[dict[str, Any]]]:
    """Attack one batch (images at ``positions`` of the data); returns the PNG writes to do
    and the batch's records. The page's images (positions < ``page``) are kept at once."""
    lab = batch_labels(attack.model, batch.images, batch.labels, batch.ids, target, attack.seed)
    source = ["predicted" if p else "given" for p in lab.predicted.tolist()]
    keep = lab.attack.nonzero().flatten().tolist()
    rows: list[dict[str, Any]] = []
    if lab.target is not None:  # a fixed target class that already is the label
        rows += [
            {
                "key": batch.ids[j],
                "id": batch.ids[j],
                "index": positions[j],
                "label": int(lab.y[j]),
                "label_source": source[j],
                "target": int(lab.target[j]),
                "skipped": "label equals the target class",
            }
            for j in (~lab.attack).nonzero().flatten().tolist()
        ]
    jobs: list[Callable[[], Any]] = []
    if not keep:
        return jobs, rows
    x, y, ids = batch.images[keep], lab.y[keep], [batch.ids[j] for j in keep]
    tgt = None if lab.target is None else lab.target[keep]
    result = as_saved(attack.run(x, y, target=tgt, ids=ids), x)
    scale = display_factor(x.shape[-1])
    for r, row in enumerate(result.records(ids)):
        pos = positions[keep[r]]
        rel = names[pos]
        row.update(key=row["id"], index=pos, label_source=source[keep[r]])
        row["adv_png"] = str(Path("adv") / rel)
        jobs.append(partial(save_png, result.x_adv[r], out / "adv" / rel))
        if result.mask is not None and result.cam is not None:
            region = (x[r], result.cam[r], result.mask[r], out / "cam" / rel, out / "mask" / rel)
            jobs.append(partial(write_region, *region, scale))
        if pos < page:
            save_page_item(out, pos, x[r], result.subset([r]), bool(lab.predicted[keep[r]]))
        rows.append(row)
    return jobs, rows
