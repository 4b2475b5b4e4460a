"""The one summary of per-image records, for every caller: ``AttackResult.summary``, the
summary of ``fcrattack attack`` (``summary.json``, computed from ``results.jsonl``) and the
report's cells (``fcrattack reproduce``)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from .norms import NORMS, summarize


def _value(row: Mapping[str, Any], key: str) -> float:
    """A record's number, NaN where it is missing, null (a non-finite number written as
    JSON) or not finite; NaN is left out of every mean. A value of another type is a
    ValueError naming the record (a damaged or edited file)."""
    v = row.get(key)
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"record {_name(row)}: {key} is not a number or null, got {v!r:.40}")
    return float(v) if math.isfinite(v) else math.nan


def _flag(row: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    """A record's true-or-false field (``default`` where it is missing); a value of another
    type is a ValueError naming the record."""
    v = row.get(key, default)
    if not isinstance(v, bool):
        raise ValueError(f"record {_name(row)}: {key} is not true or false, got {v!r:.40}")
    return v


def _name(row: Mapping[str, Any]) -> str:
    """How an error names a record: its key or image id."""
    return repr(str(row.get("key", row.get("id", "?")))[:200])


def summarize_records(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Summary of per-image records (the fields of ``AttackResult.records``); records with
    ``skipped`` (images not attacked) are left out.

    ASR in [0, 1] over the images the model classified correctly (untargeted records, without
    ``target``) or all images (targeted), with its Wilson interval; mean norms (``NORMS``)
    over the successful ones with bootstrap intervals (``summarize``); ``n_images``; and,
    where the records carry them, ``n_success_uint8`` (successful after 8-bit rounding, among
    the images that count), the mean ``mask_fraction`` and the mean ``time_s`` per image.
    Non-finite or missing numbers (NaN; inf, e.g. the PSNR of an unchanged image, is stored
    as null) are left out of their mean.
    """
    done = [r for r in rows if "skipped" not in r]
    if not done:
        raise ValueError("no image was attacked")
    success = torch.tensor([_flag(r, "success") for r in done])
    targeted = "target" in done[0]
    valid = (
        torch.ones_like(success)
        if targeted
        else torch.tensor([_flag(r, "clean_correct", True) for r in done])
    )
    norms = {k: torch.tensor([_value(r, k) for r in done], dtype=torch.float64) for k in NORMS}
    out = summarize(norms, success, valid)
    out["n_images"] = len(done)
    if "success_uint8" in done[0]:
        q = torch.tensor([_flag(r, "success_uint8") for r in done])
        out["n_success_uint8"] = int((q & valid).sum())
    for key in ("mask_fraction", "time_s"):
        if key in done[0]:
            values = torch.tensor([_value(r, key) for r in done], dtype=torch.float64)
            values = values[torch.isfinite(values)]
            out[key] = float(values.mean()) if values.numel() else math.nan
    return out
