"""The paired cells of the staged region experiment and their verdicts.

A cell is one (model, area, control): the per-image log ratio log(L2 control / L2 FCR) of
region DDN over the images both fooled (``fcrattack.base.stats.log_ratio_test``). Its verdict:
"FCR needs less" or "control needs less" when the (Holm-adjusted) t-test p <= ``ALPHA``,
"equivalent (+-5 %)" when the (Holm-adjusted) TOST p <= ``ALPHA``, else "not shown
different"; a cell with fewer than ``MIN_PAIRS`` pairs is not tested ("too few pairs").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ...base.stats import LogRatioTest, holm, log_ratio_test
from ...viz.document import Table, fmt, rate
from .region_masks import LABELS
from .results import Results

MIN_PAIRS = 30
ALPHA = 0.05
MARGIN = 0.05

Recs = dict[str, dict[str, Any]]
Runs = dict[tuple[Any, ...], str]


class Cell(NamedTuple):
    """One (model, area, control) comparison with the FCR on the same images."""

    model: str
    t: float
    control: str
    test: LogRatioTest
    fooled: int  # images the control fooled
    fooled_fcr: int  # images the FCR fooled, of those the control was run on
    attacked: int

    @property
    def tested(self) -> bool:
        return self.test.n >= MIN_PAIRS


class View(NamedTuple):
    """What the section reads of one part: the results, the experiment and part names, the
    models' labels, the run keys of region DDN by (steps, source, t) and of PGD-L2 by
    (source, t), the main number of steps and the primary controls."""

    res: Results
    exp: str
    part: str
    labels: dict[str, str]
    ddn: Runs
    pgd: Runs
    main: int
    primary: Sequence[str]

    def recs(self, model: str, key: str) -> Recs:
        return {r["id"]: r for r in self.res.get(self.exp, self.part, model, key)}


def view(res: Results, exp: str, part: dict[str, Any], primary: Sequence[str]) -> View:
    """The ``View`` of a part of the config."""
    ddn, pgd = {}, {}
    for r in part["runs"]:
        if r["attack"] == "region-ddn":
            ddn[(r["params"]["steps"], r["mask_source"], r["mask_t"])] = r["key"]
        elif r["attack"] == "pgdl2":
            pgd[(r["mask_source"], r["mask_t"])] = r["key"]
    main = min(
        r["params"]["steps"]
        for r in part["runs"]
        if r["attack"] == "region-ddn" and not r.get("phase")
    )
    labels = {m["name"]: m["label"] for m in part["models"]}
    return View(res, exp, part["data"]["dataset"], labels, ddn, pgd, main, primary)


def cells(v: View, controls: Sequence[str], steps: int | None = None) -> list[Cell]:
    """The cells of ``controls`` at ``steps`` of region DDN (default: the main number), per
    model and area."""
    out = []
    steps = steps or v.main
    areas = sorted({t for s, _, t in v.ddn if s == steps})
    for model in v.labels:
        for t in areas:
            fcr = v.recs(model, v.ddn[(steps, "fcr", t)])
            for src in controls:
                if (steps, src, t) not in v.ddn:
                    continue
                ctrl = v.recs(model, v.ddn[(steps, src, t)])
                ids = [i for i in fcr if fcr[i].get("success") and ctrl.get(i, {}).get("success")]
                test = log_ratio_test(
                    [ctrl[i]["l2"] for i in ids], [fcr[i]["l2"] for i in ids], margin=MARGIN
                )
                fooled = sum(bool(r.get("success")) for r in ctrl.values())
                fooled_fcr = sum(bool(r.get("success")) for i, r in fcr.items() if i in ctrl)
                out.append(Cell(model, t, src, test, fooled, fooled_fcr, len(ctrl)))
    return out


def verdicts(cells: Sequence[Cell], adjust: bool = True) -> list[str]:
    """The verdict of every cell; ``adjust``: Holm over the tested cells (the family)."""
    tested = [c for c in cells if c.tested]
    p = [c.test.p for c in tested]
    p_eq = [c.test.p_equivalent for c in tested]
    if adjust:
        p, p_eq = holm(p), holm(p_eq)
    adjusted = {id(c): (a, b) for c, a, b in zip(tested, p, p_eq)}
    out = []
    for c in cells:
        if not c.tested:
            out.append("too few pairs")
            continue
        pa, pe = adjusted[id(c)]
        if pa <= ALPHA:
            out.append("FCR needs less" if c.test.ratio > 1 else "control needs less")
        elif pe <= ALPHA:
            out.append(f"equivalent (+-{100 * MARGIN:.0f} %)")
        else:
            out.append("not shown different")
    return out


def answer(pname: str, cells: Sequence[Cell], verdict: Sequence[str], budget: str = "") -> str:
    """The data set's answer in one sentence, from the verdicts alone (``budget``: a phrase
    naming the attack budget and images, when it is not the main one)."""
    clauses = []
    for control in dict.fromkeys(c.control for c in cells):
        mine = [(c, v) for c, v in zip(cells, verdict) if c.control == control]
        counts: dict[str, int] = {}
        for _, v in mine:
            counts[v] = counts.get(v, 0) + 1
        ratios = [c.test.ratio for c, _ in mine if c.tested]
        span = f" (geometric-mean ratios {fmt(min(ratios))}-{fmt(max(ratios))})" if ratios else ""
        found = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        clauses.append(f"against {LABELS[control]}, of {len(mine)} cells: {found}{span}")
    tested = sum(c.tested for c in cells)
    return (
        f"**Answer ({pname}{budget})**, from {tested} Holm-corrected tests (alpha = {ALPHA}): "
        + "; ".join(clauses)
        + "."
    )


def cell_table(
    cells: Sequence[Cell], verdict: Sequence[str], labels: dict[str, str], note: str
) -> Table:
    """The table of ``cells``: ASRs, pairs, ratio with interval, p-values, verdict."""
    rows = [
        [
            labels[c.model],
            f"t={c.t}",
            LABELS[c.control],
            rate(c.fooled, c.attacked),
            rate(c.fooled_fcr, c.attacked),
            str(c.test.n),
            f"{fmt(c.test.ratio, 3)} [{fmt(c.test.lo, 3)}, {fmt(c.test.hi, 3)}]",
            fmt(c.test.p, 4),
            fmt(c.test.p_equivalent, 4),
            v,
        ]
        for c, v in zip(cells, verdict)
    ]
    headers = ["model", "area", "control", "ASR control", "ASR FCR", "pairs"]
    headers += ["L2 control / FCR, geometric mean [95 % CI]", "p (t-test)", "p (TOST)", "verdict"]
    return Table(headers, rows, [note])
