"""Beyond the paper: do FCR-restricted perturbations transfer better than unrestricted ones at
equal L2 budgets? PGD-L2 inside the source model's FCR mask or on the whole image, and
minimum-norm region DDN at t = 0.2 and t = 0."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from ...viz import figures
from ...viz.document import Block, Table, fmt, rate
from ..machinery.results import Results, mean, mean_of
from ..machinery.spec import R20, R32, VGG11, AttackSetting, Experiment, Part, Scale, cifar

BUDGETS = (0.25, 0.5, 1.0)


def parts(s: Scale) -> list[Part]:
    runs = []
    for eps in BUDGETS:
        runs += [
            AttackSetting(
                f"pgdl2-fcr-{eps}",
                "pgdl2",
                f"PGD-L2 eps={eps} in the FCR (t=0.2)",
                {"eps": eps, "steps": 20},
                mask_t=0.2,
            ),
            AttackSetting(
                f"pgdl2-full-{eps}",
                "pgdl2",
                f"PGD-L2 eps={eps} unrestricted",
                {"eps": eps, "steps": 20},
            ),
        ]
    runs += [
        AttackSetting(
            f"region-ddn-t-{t}", "region-ddn", f"region DDN t={t}", {"steps": s.ddn_steps, "t": t}
        )
        for t in (0.2, 0.0)
    ]
    return [Part(cifar(s, s.n_beyond), [VGG11, R20, R32], runs)]


def _fooled(recs: list[dict[str, Any]], target: str) -> int:
    return sum(r["transfer"][target] for r in recs)


def _conclusion(diffs: list[float], what: str, caveat: str | None = None) -> str:
    """'restricted higher in k of m cells ...' from the per-cell differences (points), with a
    verdict on the claim; with ``caveat`` (budgets differ) the caveat replaces the verdict."""
    if not diffs:
        return f"{what}: no cell to compare."
    hi, lo = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    mean = sum(diffs) / len(diffs)
    verdict = (
        "supports"
        if hi > lo and mean > 0
        else "contradicts"
        if lo > hi and mean < 0
        else "does not decide"
    )
    text = (
        f"{what}: restricted higher in {hi} of {len(diffs)} cells, equal in "
        f"{len(diffs) - hi - lo}, lower in {lo}; mean difference {mean:+.2f} points. "
    )
    return text + (
        caveat
        or f"At equal L2 budgets this {verdict} the claim that "
        "FCR-restricted perturbations transfer better."
    )


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname, models = part["data"]["dataset"], part["models"]
        pgd = {
            (r["params"]["eps"], r["mask_t"] is not None): r
            for r in part["runs"]
            if r["attack"] == "pgdl2"
        }
        ddn = {r["params"]["t"]: r for r in part["runs"] if r["attack"] == "region-ddn"}
        budgets = sorted({eps for eps, _ in pgd})
        rows, ddn_rows, diffs, ddn_diffs = [], [], [], []
        ddn_l2: dict[float, list[float]] = defaultdict(list)
        curves: dict[tuple[bool, bool], dict[float, list[float]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for src in models:
            for eps in budgets:
                recs = {
                    r: res.get(exp, pname, src["name"], pgd[(eps, r)]["key"]) for r in (True, False)
                }
                if not (recs[True] and recs[False]):
                    continue
                for tgt in models:
                    white = tgt["name"] == src["name"]
                    k = {r: _fooled(recs[r], tgt["name"]) for r in recs}
                    d = 100 * (k[True] / len(recs[True]) - k[False] / len(recs[False]))
                    for r in recs:
                        curves[(r, white)][eps].append(100 * k[r] / len(recs[r]))
                    if not white:
                        diffs.append(d)
                    rows.append(
                        [
                            src["label"],
                            f"{eps:g}",
                            tgt["label"] + (" (white-box)" if white else ""),
                            rate(k[True], len(recs[True])),
                            rate(k[False], len(recs[False])),
                            f"{d:+.2f}",
                            fmt(mean(recs[True], "l2"), 3),
                            fmt(mean(recs[False], "l2"), 3),
                        ]
                    )
            recs_d = {t: res.get(exp, pname, src["name"], ddn[t]["key"]) for t in ddn}
            if len(ddn) == 2 and all(recs_d.values()):
                t_fcr, t_full = max(ddn), min(ddn)
                for t in ddn:
                    ddn_l2[t] += [r["l2"] for r in recs_d[t]]
                for tgt in models:
                    white = tgt["name"] == src["name"]
                    asr = {t: 100 * _fooled(recs_d[t], tgt["name"]) / len(recs_d[t]) for t in ddn}
                    if not white:
                        ddn_diffs.append(asr[t_fcr] - asr[t_full])
                    ddn_rows.append(
                        [src["label"], tgt["label"] + (" (white-box)" if white else "")]
                        + [
                            f"{rate(_fooled(recs_d[t], tgt['name']), len(recs_d[t]))}, "
                            f"L2 {fmt(mean(recs_d[t], 'l2'), 3)}"
                            for t in (t_fcr, t_full)
                        ]
                        + [f"{asr[t_fcr] - asr[t_full]:+.2f}"]
                    )
        n = res.part_status(exp, pname).get("n_eligible", "?")
        blocks.append(
            Block(
                "table",
                table=Table(
                    [
                        "source",
                        "L2 budget eps",
                        "target",
                        "restricted (FCR t=0.2) ASR",
                        "unrestricted ASR",
                        "diff (points)",
                        "mean L2 restricted",
                        "mean L2 unrestricted",
                    ],
                    rows,
                    [
                        res.scale_note(exp, part),
                        "PGD-L2 crafted once on the source at L2 <= eps ([0, 1] scale), inside "
                        "the "
                        f"source's FCR mask or on the whole image; ASR = fooled / n on each target "
                        f"over n = {n} images every model classifies correctly (rows marked "
                        "white-box: the source itself). Mean L2 over all attacked images.",
                        _conclusion(diffs, "Equal-L2 transfer (source != target)"),
                    ],
                ),
            )
        )
        if ddn_rows:
            blocks.append(
                Block(
                    "table",
                    table=Table(
                        [
                            "source",
                            "target",
                            f"region DDN t={max(ddn)} ASR, mean L2",
                            f"region DDN t={min(ddn)} ASR, mean L2",
                            "diff (points)",
                        ],
                        ddn_rows,
                        [
                            "Minimum-norm region DDN inside the FCR (t = 0.2) and on the whole "
                            "image (t = 0): "
                            "their L2 differ (mean over all attacked images), so this is not an "
                            "equal-"
                            "budget comparison.",
                            _conclusion(
                                ddn_diffs,
                                "region DDN transfer (source != target)",
                                f"Not an equal-budget test: the restricted perturbations have "
                                f"mean L2 {fmt(mean_of(ddn_l2[max(ddn)]), 3)} against "
                                f"{fmt(mean_of(ddn_l2[min(ddn)]), 3)} unrestricted (all "
                                "sources).",
                            ),
                        ],
                    ),
                )
            )
        series = [
            (
                f"{'restricted' if r else 'unrestricted'} ({'white-box' if w else 'transfer'})",
                budgets,
                [sum(curves[(r, w)][e]) / len(curves[(r, w)][e]) for e in budgets],
            )
            for w in (False, True)
            for r in (True, False)
            if curves[(r, w)]
        ]
        png = figures.line_plot(
            figdir / f"{exp}-{pname}.png",
            f"ASR vs L2 budget ({pname})",
            "L2 budget eps [0,1]",
            "ASR (%), mean over source->target pairs",
            series,
        )
        blocks.append(
            Block(
                "img",
                f"PGD-L2 ASR against the L2 budget, restricted to the FCR "
                f"(t = 0.2) or not ({pname}); transfer: mean over the source->"
                "target pairs with source != target",
                src=f"{figdir.name}/{png.name}",
            )
        )
    blocks += [Block("p", note) for note in res.notes(exp)]
    return blocks


EXPERIMENT = Experiment(
    "transfer-equal-l2",
    "Do FCR-restricted perturbations transfer better at equal L2?",
    "Beyond the paper",
    "transfer",
    parts,
    section,
    notes="PGD-L2 uses 20 steps and step size 2.5 eps / 20 (random start), restricted to the "
    "source model's FCR mask (t = 0.2, Grad-CAM of the true class) or not; region DDN "
    "rows are minimum-norm, so their L2 differ.",
)
