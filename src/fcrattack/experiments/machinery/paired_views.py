"""The views of the staged region experiment beside its primary cells: PGD-L2 at a fixed
budget (success paired over images, exact sign test, Holm), the convergence check (does the
order of the regions hold at a longer budget?) and the cost (seconds per image-region-step)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...base.stats import holm, sign_test
from ...viz.document import Block, Table, fmt, rate
from .paired_stats import MIN_PAIRS, View
from .region_masks import LABELS


def pgd_view(v: View) -> list[Block]:
    """PGD-L2 inside each primary control against the FCR, at the same budget."""
    tests, rows = [], []
    for model in v.labels:
        for (src, t), key in sorted(v.pgd.items(), key=lambda kv: kv[0][1]):
            if src not in v.primary or ("fcr", t) not in v.pgd:
                continue
            fcr, ctrl = v.recs(model, v.pgd[("fcr", t)]), v.recs(model, key)
            ids = [i for i in ctrl if i in fcr]
            if not ids:
                continue
            wins = sum(bool(fcr[i]["success"]) and not ctrl[i]["success"] for i in ids)
            losses = sum(bool(ctrl[i]["success"]) and not fcr[i]["success"] for i in ids)
            tests.append((len(ids) >= MIN_PAIRS, sign_test(wins, losses)))
            rows.append(
                [
                    v.labels[model],
                    f"t={t}",
                    LABELS[src],
                    fmt(ctrl[ids[0]].get("budget_l2"), 3),
                    rate(sum(bool(fcr[i]["success"]) for i in ids), len(ids)),
                    rate(sum(bool(ctrl[i]["success"]) for i in ids), len(ids)),
                    f"{wins} / {losses}",
                ]
            )
    if not rows:
        return []
    adjusted = iter(holm([p for ok, p in tests if ok]))
    for row, (ok, p) in zip(rows, tests):
        row += [fmt(p, 4), fmt(next(adjusted), 4) if ok else f"under {MIN_PAIRS} images"]
    note = (
        "PGD-L2, 20 steps, at one L2 budget per (model, area): the median L2 region DDN needed "
        "in that model's FCR. Success paired over the same images; exact sign test on the "
        "images only one region fooled, Holm over this table's tests."
    )
    headers = ["model", "area", "control", "L2 budget", "ASR in FCR", "ASR in control"]
    headers += ["fooled by FCR only / control only", "p (sign test)", "p (Holm)"]
    return [
        Block("h3", f"Second view: PGD-L2 at a fixed budget ({v.part})"),
        Block("table", table=Table(headers, rows, [note])),
    ]


def _geo(values: Sequence[float]) -> float:
    return math.exp(sum(math.log(x) for x in values) / len(values)) if values else math.nan


def order(geo: dict[tuple[int, str], float], regions: Sequence[str], steps: int) -> list[str]:
    """The regions by their geometric-mean L2 at ``steps``, least first."""
    return sorted(regions, key=lambda g: geo[(steps, g)])


def convergence_view(v: View) -> tuple[list[Block], bool]:
    """The primary regions at the main and at a longer budget on the same images, and
    whether the order of the regions holds in every cell (True without a longer budget)."""
    regions = ("fcr", *v.primary)
    longer = sorted({s for s, src, _ in v.ddn if s != v.main and src == "fcr"})
    rows, held = [], []
    for steps in longer:
        for model in v.labels:
            for t in sorted({t for s, _, t in v.ddn if s == steps}):
                recs = {
                    (s, src): v.recs(model, v.ddn[(s, src, t)])
                    for s in (v.main, steps)
                    for src in regions
                }
                ids = [
                    i
                    for i in recs[(steps, "fcr")]
                    if all(r.get(i, {}).get("success") for r in recs.values())
                ]
                if not ids:
                    continue
                geo = {k: _geo([r[i]["l2"] for i in ids]) for k, r in recs.items()}
                short, long = (order(geo, regions, s) for s in (v.main, steps))
                held.append(short == long)
                rows.append(
                    [v.labels[model], f"t={t}", f"{v.main} -> {steps}", str(len(ids))]
                    + [f"{fmt(geo[(v.main, g)], 3)} -> {fmt(geo[(steps, g)], 3)}" for g in regions]
                    + [" < ".join(LABELS[g] for g in long), "yes" if held[-1] else "no"]
                )
    if not rows:
        return [], True
    verdict = f"The order of the regions holds at the longer budget in {sum(held)} of {len(held)} "
    verdict += (
        "cells."
        if all(held)
        else "cells: the answer rests on the primary cells at the longer budget below."
    )
    headers = ["model", "area", "steps", "images"]
    headers += [f"{LABELS[g]}: geometric-mean L2" for g in regions]
    headers += ["order at the longer budget (least L2 first)", "order holds"]
    note = "Region DDN on the same first images, over those every region fooled at both budgets."
    blocks = [
        Block("h3", f"Convergence check ({v.part})"),
        Block("table", table=Table(headers, rows, [note])),
        Block("p", verdict),
    ]
    return blocks, all(held)


def cost_note(v: View) -> Block:
    """Seconds per image-region-step of region DDN per model, and the attack time in all."""
    texts, total = [], 0.0
    for model in v.labels:
        secs = steps = 0.0
        for (s, _, _), key in v.ddn.items():
            for r in v.res.get(v.exp, v.part, model, key):
                secs += r.get("time_s") or 0.0
                steps += s
        busy = sum(
            r.get("time_s") or 0.0
            for (e, p, m, _), recs in v.res.groups.items()
            if (e, p, m) == (v.exp, v.part, model)
            for r in recs
        )
        total += busy
        if steps:
            texts.append(
                f"{v.labels[model]}: {secs / steps:.4f} s per image-region-step of region DDN, "
                f"{busy / 3600:.2f} h in all"
            )
    env = v.res.env
    where = f"{env.get('device_name') or env.get('device', '?')}, "
    where += f"{env.get('torch_threads', '?')} torch thread(s)"
    return Block(
        "p",
        f"Cost ({v.part}, {where}): "
        + "; ".join(texts)
        + f"; {total / 3600:.2f} h of attack time for this data set (the sum of the records' "
        "times).",
    )
