"""Beyond the paper: is the FCR a better place to perturb than other regions of the same size?

Per image, region DDN (minimum L2, the same options throughout) inside regions of equal
per-image area from every source of ``fcrattack.regions`` (the FCR, its complement's
lowest pixels, another image's FCR, centred and random discs, random pixels, other CAM methods
and SmoothGrad), at the areas of the FCR at t = 0.2, 0.5 and 0.7; each control's L2 is
compared with the FCR's on the same images (paired bootstrap). Then PGD-L2 at equal L2 budgets
inside the FCR, a shuffled FCR and a centred disc (area of t = 0.2), and how often each
transfers to the other models.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from ...base.stats import bootstrap_mean_interval, log_ratio_test
from ...regions import SOURCES
from ...viz import figures
from ...viz.document import Block, Table, fmt, rate
from ..machinery import spec
from ..machinery.paired_stats import MARGIN, MIN_PAIRS, Cell, answer, verdicts
from ..machinery.region_masks import LABELS
from ..machinery.results import Results, mean, mean_cell
from ..machinery.spec import AttackSetting, Experiment, Part, Scale

AREAS = (0.2, 0.5, 0.7)
TRANSFER_SOURCES = ("fcr", "shuffled-fcr", "centred-disc")
TRANSFER_T = 0.2
BUDGETS = {"cifar10": (0.5, 1.0), "imagenet": (1.0, 3.0)}


def _region_run(
    attack: str, key: str, what: str, params: dict[str, Any], t: float, source: str
) -> AttackSetting:
    label = f"{what} in {LABELS[source]}, area of FCR t={t}"
    return AttackSetting(key, attack, label, params, mask_t=t, mask_source=source)


def parts(s: Scale) -> list[Part]:
    out = []
    sides = (
        (spec.cifar, "cifar10", [spec.R20, spec.R32, spec.VGG11]),
        (spec.imagenet, "imagenet", [spec.EFFNET, spec.LITE1, spec.LITE2]),
    )
    for data, name, models in sides:
        n, steps = s.controls[name]
        runs = [
            _region_run("region-ddn", f"ddn-{src}-t{t}", "region DDN", {"steps": steps}, t, src)
            for t in AREAS
            for src in SOURCES
        ]
        runs += [
            _region_run(
                "pgdl2",
                f"pgdl2-{src}-eps{eps}",
                f"PGD-L2 eps={eps}",
                {"eps": eps, "steps": 20},
                TRANSFER_T,
                src,
            )
            for eps in BUDGETS[name]
            for src in TRANSFER_SOURCES
        ]
        out.append(Part(data(s, n), models, runs))
    return out


def _by_id(res: Results, exp: str, part: str, model: str, key: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in res.get(exp, part, model, key)}


def _paired(model: str, t: float, src: str, ctrl: dict[str, Any], fcr: dict[str, Any]) -> Cell:
    """The cell of a control against the FCR over the images both fooled."""
    ids = [i for i in fcr if fcr[i]["success"] and ctrl.get(i, {}).get("success")]
    test = log_ratio_test([ctrl[i]["l2"] for i in ids], [fcr[i]["l2"] for i in ids], margin=MARGIN)
    fooled = sum(bool(c["success"]) for c in ctrl.values())
    return Cell(
        model, t, src, test, fooled, sum(bool(f["success"]) for f in fcr.values()), len(ctrl)
    )


def _median_l2(recs: dict[str, dict[str, Any]]) -> float | None:
    values = [r["l2"] for r in recs.values() if r["success"]]
    return statistics.median(values) if values else None


def _transfer_cell(
    fcr: list[dict[str, Any]], control: list[dict[str, Any]], target: str
) -> tuple[float, float, float, int]:
    """(mean, lo, hi, n): the paired difference in points (FCR fooled the target minus the
    control fooled it) over the images both runs attacked, with its bootstrap interval."""
    ctrl = {r["id"]: r["transfer"][target] for r in control}
    d = [100.0 * (r["transfer"][target] - ctrl[r["id"]]) for r in fcr if r["id"] in ctrl]
    if not d:
        return math.nan, math.nan, math.nan, 0
    lo, hi = bootstrap_mean_interval(d)
    return sum(d) / len(d), lo, hi, len(d)


def _transfer(res: Results, exp: str, part: dict[str, Any]) -> list[Block]:
    pname, models = part["data"]["dataset"], part["models"]
    runs = {
        (r["mask_source"], r["params"]["eps"]): r for r in part["runs"] if r["attack"] == "pgdl2"
    }
    rows: list[list[str]] = []
    diffs: dict[str, list[tuple[float, float, float, int]]] = {}
    order = sorted(runs, key=lambda k: (k[1], TRANSFER_SOURCES.index(k[0])))
    for src, eps in order:
        ref = runs.get(("fcr", eps))
        for m in models:
            recs = res.get(exp, pname, m["name"], runs[(src, eps)]["key"])
            if not recs:
                continue
            row = [fmt(eps), m["label"], LABELS[src], fmt(mean(recs, "l2"), 3)]
            fcr = res.get(exp, pname, m["name"], ref["key"]) if ref and src != "fcr" else []
            for target in models:
                k = sum(r["transfer"][target["name"]] for r in recs)
                row.append(rate(k, len(recs)))
                if fcr and target["name"] != m["name"]:
                    diffs.setdefault(src, []).append(_transfer_cell(fcr, recs, target["name"]))
            rows.append(row)
    if not rows:
        return []
    sentences = []
    for src, all_cells in diffs.items():
        cells = [c for c in all_cells if c[3]]  # cells with at least one paired image
        if not cells:
            continue
        decided = [c for c in cells if c[3] >= MIN_PAIRS]
        more = sum(c[1] > 0 for c in decided)
        less = sum(c[2] < 0 for c in decided)
        mean_diff = sum(c[0] for c in cells) / len(cells)
        sentences.append(
            f"**FCR vs {LABELS[src]} at equal L2 budgets**: over {len(cells)} (source, target, "
            f"budget) cells the FCR's perturbations fool the other model {mean_diff:+.1f} "
            f"points more often on average (paired over images); the paired interval excludes "
            f"0 in favour of the FCR in {more} and against it in {less} of {len(decided)} cells "
            f"with {MIN_PAIRS} or more images."
        )
    table = Table(
        ["eps (L2)", "crafted on", "region", "mean L2 used"]
        + [f"fools {m['label']}" for m in models],
        rows,
        [
            "PGD-L2, 20 steps, at equal L2 budgets inside regions of the area of the FCR at t = "
            f"{TRANSFER_T}; the diagonal is white-box. Rates over the images every model "
            "classifies correctly, with Wilson intervals; 'mean L2 used': over all images."
        ],
    )
    return [
        Block("h3", f"Equal-L2 transfer: FCR against shuffled and centred regions ({pname})"),
        Block("table", table=table),
    ] + [Block("p", s) for s in sentences]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname, models = part["data"]["dataset"], part["models"]
        ddn = {
            (r["mask_source"], r["mask_t"]): r for r in part["runs"] if r["attack"] == "region-ddn"
        }
        steps = sorted({r["params"]["steps"] for r in ddn.values()})
        areas = sorted({t for _, t in ddn})
        sources = [s for s in SOURCES if any((s, t) in ddn for t in areas)]
        rows: list[list[str]] = []
        cells: list[Cell] = []
        panels: list[figures.Panel] = []
        for m in models:
            series: dict[str, tuple[list[float], list[float]]] = {s: ([], []) for s in sources}
            for t in areas:
                recs_of = {
                    src: _by_id(res, exp, pname, m["name"], ddn[(src, t)]["key"]) for src in sources
                }
                fcr = recs_of["fcr"]
                area = mean(list(fcr.values()), "mask_fraction")
                for src in sources:
                    a, txt = res.cell(exp, pname, m["name"], ddn[(src, t)])
                    recs = recs_of[src]
                    paired = _paired(m["name"], t, src, recs, fcr) if src != "fcr" else None
                    if paired is not None:
                        cells.append(paired)
                    rows.append(
                        [
                            m["label"],
                            f"t={t}: {fmt(area and 100 * area, 1)} %",
                            LABELS[src],
                            txt,
                            mean_cell(a, "l2", 3),
                            fmt(_median_l2(recs), 3),
                            mean_cell(a, "l0", 0),
                            "1 (reference)"
                            if paired is None
                            else f"{fmt(paired.test.ratio)} [{fmt(paired.test.lo)}, "
                            f"{fmt(paired.test.hi)}] (n = {paired.test.n})",
                        ]
                    )
                    if a is not None and area is not None:
                        series[src][0].append(100 * area)
                        series[src][1].append(a["l2"])
            panels.append(
                (
                    f"mean L2, {m['label']}",
                    [(LABELS[s], xs, ys) for s, (xs, ys) in series.items() if xs],
                    [],
                )
            )
        blocks.append(Block("h3", f"Region controls ({pname})"))
        blocks.append(
            Block(
                "table",
                table=Table(
                    [
                        "model",
                        "area (mean % of pixels)",
                        "region",
                        "ASR",
                        "mean L2 [0,1]",
                        "median L2",
                        "mean L0 values",
                        "L2 / FCR's, geometric mean [95 % CI] (pairs)",
                    ],
                    rows,
                    [
                        res.scale_note(exp, part),
                        f"Region DDN, {'/'.join(map(str, steps))} steps, in regions of the same "
                        "number of pixels per image as the model's FCR at t (the FCR row is that "
                        "FCR). L2 / FCR's: geometric mean of the per-image ratio over the images "
                        "both attacks fooled, paired bootstrap interval over images; above 1: "
                        "the control needs a larger perturbation than the FCR.",
                    ],
                ),
            )
        )
        n = res.part_status(exp, pname).get("n_eligible", "?")
        blocks.append(
            Block(
                "p",
                f"Exploratory answers ({pname}, n = {n} images per model; no control is named "
                "primary here: the region-thesis experiment tests the primary ones). Per cell "
                "the per-image log ratio over the images both attacks fooled (at least "
                f"{MIN_PAIRS}, else not tested), paired t-test with Holm over all "
                f"{sum(c.tested for c in cells)} tested cells of {pname}, equivalence only "
                f"where TOST (+-{100 * MARGIN:.0f} %) shows it:",
            )
        )
        blocks.append(Block("p", answer(pname, cells, verdicts(cells))))
        png = figures.panels_plot(
            figdir / f"{exp}-{pname}.png",
            f"region DDN: mean L2 against region area, one line per source ({pname})",
            "region area (mean % of pixels)",
            panels,
        )
        blocks.append(
            Block(
                "img",
                f"Mean L2 of region DDN (successful images) against the region's area, per "
                f"source ({pname}); the areas are the FCR's at t = "
                f"{', '.join(map(str, reversed(areas)))}, left to right",
                src=f"{figdir.name}/{png.name}",
            )
        )
        blocks += _transfer(res, exp, part)
    blocks += [Block("p", note) for note in res.notes(exp)]
    return blocks


EXPERIMENT = Experiment(
    "region-controls",
    "do the feature contributive regions matter? Region DDN in equal-area control regions",
    "Beyond the paper",
    "transfer",
    parts,
    section,
    notes="Every model sees the images at the data set's size (ImageNet: 224 px, also for "
    "Lite1 and Lite2, whose native sizes are 240 and 260 px). XGrad-CAM equals Grad-CAM on "
    "networks whose last feature map is only average-pooled before a linear layer (the "
    "ResNets and EfficientNet-Lites here, not VGG-11, whose map is max-pooled): the gradient "
    "is then constant over positions.",
)
