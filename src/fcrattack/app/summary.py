"""The summarise step of a data-set attack: ``summary.json`` from the per-image records,
with the images whose saved PNG is not adversarial named, and floats rounded."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..attacks import Attack
from ..base.store import write_json
from ..base.warn import warn
from ..metrics import CONVENTIONS
from .folder import options_json


def png_not_adversarial(rows: Sequence[Mapping[str, Any]], what: str) -> dict[str, Any]:
    """The attacked images whose float result succeeds but whose saved 8-bit PNG does not
    (``success`` and not ``success_uint8``) among the records ``rows`` of run ``what``:
    ``{"count": n, "ids": [...]}``, with a ``fcrattack.FcrattackWarning`` naming the
    first five when there are any."""
    done = [r for r in rows if "skipped" not in r]
    ids = [r["id"] for r in done if r["success"] and not r["success_uint8"]]
    if ids:
        names = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        warn(
            f"{what}: {len(ids)} of {len(done)} saved adversarial PNGs are not adversarial "
            f"(they succeed only in float, before 8-bit rounding): {names}"
        )
    return {"count": len(ids), "ids": ids}


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` (JSON: dicts, lists, numbers) with every float rounded to ``digits``
    significant digits, so that summaries show 0.972973, not float32 noise."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def write_summary(
    out: Path,
    attack: Attack,
    records: Sequence[Mapping[str, Any]],
    summary: dict[str, Any],
    *,
    target: Any,
    info: dict[str, Any] | None,
    n_images: int,
    unreadable: Sequence[str],
    resumed: int,
    seconds: float,
    processes: int,
) -> None:
    """Write ``out/summary.json`` (last: a folder with it holds a finished run).

    Args:
        out: the output folder.
        attack: the attack of the run (name and options).
        records: every record of the run, in the images' order; records with ``skipped``
            were not attacked.
        summary: ``fcrattack.metrics.summarize_records`` of the records.
        target: the run's ``target=``; info: the caller's JSON values.
        n_images: the images of the data; unreadable: ids of images that could not be read
            before the run (an in-memory data set's skipped files).
        resumed: images done before this process started; seconds: its attack time;
            processes: the data-parallel world size.
    """
    skipped = [r for r in records if "skipped" in r]
    write_json(
        out / "summary.json",
        rounded(
            {
                "attack": attack.name,
                "options": options_json(attack),
                "target": target,
                **(info or {}),
                "n_images": n_images,
                "n_attacked": len(records) - len(skipped),
                "not_attacked": {
                    reason: sum(r["skipped"] == reason for r in skipped)
                    for reason in sorted({r["skipped"] for r in skipped})
                },
                "unreadable": [r["id"] for r in skipped if r["skipped"] == "unreadable file"]
                + list(unreadable),
                "resumed_after": resumed,
                "seconds": seconds,
                "processes": processes,
                "fcrattack": __version__,
                "summary": summary,
                "png_not_adversarial": png_not_adversarial(records, attack.name),
                "conventions": CONVENTIONS,
            }
        ),
    )
