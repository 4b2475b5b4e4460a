"""The one summary of per-image records, for every caller: ``AttackResult.summary``, the
summary of ``fcrattack attack`` (``summary.json``, computed from ``results.jsonl``) and the
report's cells (``fcrattack reproduce``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .norms import NORMS, summarize
from .records import record_problem, values_of


def _value(row: Mapping[str, Any], key: str) -> float:
    """A record's number, NaN where it is missing, null (a non-finite number written as
    JSON) or not finite; NaN is left out of every mean."""
    v = row.get(key)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def summarize_records(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Summary of per-image records (the fields of ``AttackResult.records``); records with
    ``skipped`` (images not attacked) are left out.

    ASR in [0, 1] over the images the model classified correctly (untargeted records, without
    ``target``) or all images (targeted), with its Wilson interval; mean norms (``NORMS``)
    over the successful ones with bootstrap intervals (``summarize``); ``n_images``; and,
    where the records carry them, ``n_success_uint8`` (successful after 8-bit rounding, among
    the images that count), the mean ``mask_fraction`` and the mean ``time_s`` per image.
    Non-finite numbers (inf, the PSNR of an unchanged image, is stored as null) are left out
    of their mean. A record not of the form ``fcrattack.metrics.records`` describes is a
    ValueError naming it and the field.
    """
    done = [r for r in rows if "skipped" not in r]
    if not done:
        raise ValueError("no image was attacked")
    for r in done:  # a record read back from a file may have been edited or damaged
        problem = record_problem(r)
        if problem:
            name = str(r.get("key", r.get("id", "?")))[:200]
            raise ValueError(f"the record of {name!r} is not one fcrattack writes: {problem}")
    sizes = [values_of(r) for r in done if r["l2"] and r.get("psnr") not in (None, math.inf)]
    if sizes and max(sizes) > min(sizes) * (1 + 1e-2):  # one image size per summary
        raise ValueError(
            f"the records' PSNR and L2 imply images of {min(sizes):.0f} to {max(sizes):.0f} "
            "values: they are not of one run (edited?)"
        )
    targeted = "target" in done[0]
    if any(("target" in r) != targeted for r in done):
        raise ValueError("the records mix targeted and untargeted attacks")
    success = torch.tensor([bool(r["success"]) for r in done])
    valid = (
        torch.ones_like(success)
        if targeted
        else torch.tensor([bool(r["clean_correct"]) for r in done])
    )
    norms = {k: torch.tensor([_value(r, k) for r in done], dtype=torch.float64) for k in NORMS}
    out = summarize(norms, success, valid)
    out["n_images"] = len(done)
    if "success_uint8" in done[0]:
        q = torch.tensor([bool(r["success_uint8"]) for r in done])
        out["n_success_uint8"] = int((q & valid).sum())
    for key in ("mask_fraction", "time_s"):
        if key in done[0]:
            values = torch.tensor([_value(r, key) for r in done], dtype=torch.float64)
            values = values[torch.isfinite(values)]
            out[key] = float(values.mean()) if values.numel() else math.nan
    return out
