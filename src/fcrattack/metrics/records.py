"""The form of a per-image record of an attack (the fields of ``AttackResult.records``),
checked wherever records are read back from a file (``fcrattack attack``'s resumed or
finished runs, ``fcrattack report``) and wherever they are summarised: a record edited or
damaged by hand is refused, naming the field, rather than counted wrongly.

Besides each field's type, ``clean_correct`` and ``success`` must agree with the predictions
(``pred_clean`` equals ``label``; ``pred_adv`` differs from ``label``, or equals ``target``),
and the norms must hold together as ``perturbation_norms`` computes
them on [0, 1] images: every norm is >= 0, ``linf`` <= 1 and <= ``l2`` <=
``linf * sqrt(l0)``, ``l0_pixels`` <= ``l0``, the ``*_255`` values are 255 times (PSNR:
48.13 dB above) their [0, 1] counterparts, and ``mask_fraction`` lies in [0, 1].
L0 counts are whole numbers, an image whose ``l2`` is 0 has no PSNR (null or +inf) and
``l0`` 0, and otherwise its PSNR and ``l2`` imply its number of values (C*H*W), which is at
least ``l0`` (``values_of``; the summary also requires it to be one number for all records);
``time_s`` is at most ``MAX_SECONDS``. Every number is finite but a PSNR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from .norms import NORMS, PSNR_255_OFFSET

#: true-or-false fields every attacked image's record holds
FLAGS = ("success", "success_uint8", "clean_correct")
#: class-index fields every attacked image's record holds (``target`` where targeted)
INDICES = ("label", "pred_clean", "pred_adv")
#: relative tolerance of the relations between norms (float32 rounding)
RTOL = 1e-3
#: the most values (C*H*W) an image may have, and seconds an image may take: far beyond any
#: real one, so that an edited record of absurd size is refused
MAX_VALUES = 1e10
MAX_SECONDS = 1e7


def record_problem(row: Mapping[str, Any]) -> str:
    """Why ``row``, the record of an attacked image, is not of the form fcrattack writes (the
    module docstring); "" when it is."""
    for key in FLAGS:
        if not isinstance(row.get(key), bool):
            return f"{key} is not true or false, got {_shown(row.get(key))}"
    for key in (*INDICES, *(("target",) if "target" in row else ())):
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key} is not a class index, got {_shown(value)}"
    if row["clean_correct"] != (row["pred_clean"] == row["label"]):
        return "clean_correct does not say whether pred_clean equals label"
    fooled = (
        row["pred_adv"] == row["target"] if "target" in row else row["pred_adv"] != row["label"]
    )
    if row["success"] != fooled:
        return "success does not say whether pred_adv " + (
            "equals target" if "target" in row else "differs from label"
        )
    values: dict[str, float] = {}
    for key in (*NORMS, "mask_fraction", "time_s"):
        if key not in row and key in ("mask_fraction", "time_s"):
            continue
        value = row.get(key)
        psnr = key.startswith("psnr")
        if psnr and (value is None or value == math.inf):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"{key} is not a number, got {_shown(value)}"
        if not math.isfinite(value) or value < 0:
            return f"{key} is not a finite number >= 0, got {_shown(value)}"
        values[key] = float(value)
    return _norms_problem(values)


def _norms_problem(v: dict[str, float]) -> str:
    """Why the norms ``v`` (finite, >= 0) do not hold together (module docstring)."""

    def near(a: float, b: float) -> bool:
        return abs(a - b) <= RTOL * max(abs(a), abs(b)) + 1e-6

    l2, linf, l0, pixels = v["l2"], v["linf"], v["l0"], v["l0_pixels"]
    if not (l0.is_integer() and pixels.is_integer()):
        return f"l0 {l0:g} or l0_pixels {pixels:g} is not a whole number"
    if v.get("time_s", 0.0) > MAX_SECONDS:
        return f"time_s {v['time_s']:g} is above {MAX_SECONDS:g} seconds"
    if (l2 == 0) != ("psnr" not in v) or ("psnr" in v) != ("psnr_255" in v) or (l2 == 0 < l0):
        return "l2, l0 and psnr do not agree on whether the image changed"
    if l2 > 0:  # the number of values the PSNR implies: C*H*W = l2**2 * 10**(psnr / 10)
        values = values_of(v)
        if not l0 <= values * (1 + RTOL) <= MAX_VALUES:
            return f"psnr {v['psnr']:g} with l2 {l2:g} implies {values:g} values, not l0 or more"
    if linf > 1 + 1e-6:
        return f"linf is above 1, got {linf:g}"
    if not linf <= l2 * (1 + RTOL) + 1e-6 or not l2 <= linf * math.sqrt(l0) * (1 + RTOL) + 1e-6:
        return f"l2 {l2:g} does not lie between linf {linf:g} and linf * sqrt(l0 {l0:g})"
    if pixels > l0:
        return f"l0_pixels {pixels:g} is above l0 {l0:g}"
    for key in ("l2", "linf"):
        if not near(v[f"{key}_255"], 255 * v[key]):
            return f"{key}_255 {v[f'{key}_255']:g} is not 255 times {key} {v[key]:g}"
    if "psnr" in v and "psnr_255" in v and not near(v["psnr_255"], v["psnr"] + PSNR_255_OFFSET):
        return f"psnr_255 {v['psnr_255']:g} is not psnr {v['psnr']:g} + 48.13"
    if v.get("mask_fraction", 0.0) > 1:
        return f"mask_fraction is above 1, got {v['mask_fraction']:g}"
    return ""


def values_of(v: Mapping[str, Any]) -> float:
    """The number of values (C*H*W) of an image that the PSNR and L2 of its record imply
    (``psnr = 10 log10(C*H*W / l2**2)``; inf where that overflows)."""
    try:
        return float(v["l2"]) ** 2 * 10 ** (float(v["psnr"]) / 10)
    except OverflowError:
        return math.inf


def _shown(value: Any) -> str:
    """``repr`` of a value, cut to a few characters."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}..."
