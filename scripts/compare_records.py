#!/usr/bin/env python
"""Compare the per-image records of two ``fcrattack reproduce`` folders, field by field.

Records are matched by key. ``--rename OLD=NEW`` maps names of an older folder (e.g.
``fcr-ddn=region-ddn``) in keys, attack names and attack classes; non-finite numbers compare
equal to null (the store writes them as null); ``time_s`` is ignored. Prints, per experiment,
how many records are identical, differ (with the fields and an example) or exist on one side
only; exits 1 when any differ.

    python scripts/compare_records.py runs/old runs/new --rename fcr-ddn=region-ddn
"""

from __future__ import annotations

import argparse
import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from fcrattack.base.store import json_safe, read_records
from fcrattack.experiments.machinery.spec import upgrade

IGNORED = {"time_s"}


def load(folder: Path, renames: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    out = {}
    for rec in read_records(folder / "records.jsonl"):
        rec = json_safe(upgrade(rec))
        for field in ("key", "attack", "attack_key"):
            if isinstance(rec.get(field), str):
                for old, new in renames:
                    rec[field] = rec[field].replace(old, new)
        out[rec["key"]] = rec
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return bool(a == b)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("old", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("--rename", action="append", default=[], metavar="OLD=NEW")
    args = p.parse_args()
    renames = [tuple(r.split("=", 1)) for r in args.rename]
    old, new = load(args.old, renames), load(args.new, renames)  # type: ignore[arg-type]
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[tuple[str, str], str] = {}
    for key in sorted(set(old) | set(new)):
        exp = key.split("/")[0]
        if key not in new or key not in old:
            counts[exp]["only old" if key in old else "only new"] += 1
            continue
        a, b = old[key], new[key]
        fields = sorted(
            f
            for f in set(a) | set(b) - IGNORED
            if f not in IGNORED and not same(a.get(f), b.get(f))
        )
        if not fields:
            counts[exp]["identical"] += 1
            continue
        label = ",".join(fields)
        counts[exp][f"differ in {label}"] += 1
        examples.setdefault(
            (exp, label),
            f"{key}: " + "; ".join(f"{f} {a.get(f)!r} -> {b.get(f)!r}" for f in fields[:4]),
        )
    differ = False
    for exp, c in counts.items():
        print(f"{exp}: " + ", ".join(f"{k} {v}" for k, v in sorted(c.items())))
        for (e, _label), text in examples.items():
            if e == exp:
                print(f"    e.g. {text}")
        differ |= any(k.startswith("differ") for k in c)
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
