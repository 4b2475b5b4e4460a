"""The paper's thesis, tested: is the FCR a better place to perturb than a region of the same
size that ignores the network's evidence?

Per image, region DDN (minimum L2) inside the FCR and inside equal-area controls; per cell
(model, area, control) the per-image log ratio log(L2 control / L2 FCR) over the images both
fooled, tested with a paired t-test (Holm-corrected over the primary family of the data set)
and a TOST equivalence test (+-5 %). Named before any result:

- **primary** controls: a centred disc (the centre bias of photographs and of CIFAR-10) and
  another image's FCR (the same shapes on the wrong image);
- **secondary** (exploratory, unadjusted): random pixels, the lowest Grad-CAM pixels and the
  SmoothGrad region, on the first images only;
- a **convergence check** (the primary cells at 200 instead of 50 steps on the first 32
  images: does the order of the regions hold? Where it does not, the primary cells at 200
  steps are tested too, as a family of their own, and the answer rests on them) and a
  **second view** that does not rest on one optimiser: PGD-L2 at a fixed budget per (model,
  area), the median L2 region DDN needed in the FCR, inside each primary region, success
  paired over images (exact sign test).

ImageNet: EfficientNet-Lite0 (224 px, up to 100 images) and Lite2 (260 px, its own size, up to
64), areas of the FCR at t = 0.5 and 0.7 (about 25 % and 12 % of the image). CIFAR-10: the
three networks at t = 0.2, 0.5, 0.7, 100 images for the primary cells, 45 for the secondary.
The run is staged (kind "paired"): its records pair up on the first images first, and are
packed into ``records.jsonl.gz`` at every stage, so that a committed folder resumes on a
fresh clone. The scale does not change this experiment; it is not part of ``reproduce all``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ...viz import figures
from ...viz.document import Block
from ..machinery import spec
from ..machinery.paired_stats import (
    MARGIN,
    MIN_PAIRS,
    View,
    answer,
    cell_table,
    cells,
    verdicts,
    view,
)
from ..machinery.paired_views import convergence_view, cost_note, pgd_view
from ..machinery.region_masks import LABELS
from ..machinery.results import Results
from ..machinery.spec import AttackSetting, DataSpec, Experiment, Part, Scale

PRIMARY = ("centred-disc", "shuffled-fcr")
SECONDARY = ("random-pixels", "lowest-cam", "smoothgrad")
DDN_STEPS = {"cifar10": 100, "imagenet": 50}
CONVERGENCE_STEPS, CONVERGENCE_IMAGES = 200, 32
PGD_STEPS = 20
AREAS = {"cifar10": (0.2, 0.5, 0.7), "imagenet": (0.5, 0.7)}
SECONDARY_IMAGES = {"cifar10": 45, "imagenet": 32}
STAGES = {"cifar10": (45, 100), "imagenet": (32, 64, 100)}


def _ddn(name: str, steps: int, t: float, source: str, **kw: Any) -> AttackSetting:
    return AttackSetting(
        f"ddn{steps}-{source}-t{t}",
        "region-ddn",
        f"region DDN, {steps} steps, in {source}, area of FCR t={t}",
        {"steps": steps, "quantize": False},
        mask_t=t,
        mask_source=source,
        **kw,
    )


def runs_for(name: str) -> list[AttackSetting]:
    """Every run of one data set, in phases: primary, PGD-L2 second view, secondary,
    convergence check."""
    steps, areas = DDN_STEPS[name], AREAS[name]
    primary = ("fcr", *PRIMARY)
    runs = [_ddn(name, steps, t, src) for t in areas for src in primary]
    runs += [
        AttackSetting(
            f"pgdl2-{src}-t{t}",
            "pgdl2",
            f"PGD-L2 at the FCR's median L2, in {src}, area of FCR t={t}",
            {"steps": PGD_STEPS},
            budget_from=f"ddn{steps}-fcr-t{t}",
            budget_rule="median",
            mask_t=t,
            mask_source=src,
            phase=1,
        )
        for t in areas
        for src in primary
    ]
    runs += [
        _ddn(name, steps, t, src, first=SECONDARY_IMAGES[name], phase=2)
        for t in areas
        for src in SECONDARY
    ]
    if name == "imagenet":
        runs += [
            _ddn(name, CONVERGENCE_STEPS, t, src, first=CONVERGENCE_IMAGES, phase=3)
            for t in areas
            for src in primary
        ]
    return runs


def parts(s: Scale) -> list[Part]:
    cifar = Part(
        DataSpec("cifar10", "data/cifar10-jpeg", 150, batch_size=90),
        [replace(m, max_images=100) for m in (spec.R20, spec.R32, spec.VGG11)],
        runs_for("cifar10"),
        STAGES["cifar10"],
    )
    imagenet = Part(
        DataSpec("imagenet", "data/imagenet-samples", 140, batch_size=12),
        [
            replace(spec.EFFNET, size=224, max_images=100),
            replace(spec.LITE2, size=260, max_images=64),
        ],
        runs_for("imagenet"),
        STAGES["imagenet"],
    )
    return [cifar, imagenet]


def _design(part: str, main: int, areas: list[float], family: int) -> str:
    return (
        f"Primary controls (named before the results): "
        f"{', '.join(LABELS[s] for s in PRIMARY)}; secondary, exploratory: "
        f"{', '.join(LABELS[s] for s in SECONDARY)}. Region DDN, {main} steps, in regions of "
        f"the per-image area of the FCR at t = {', '.join(map(str, areas))}. Per cell the "
        "per-image log ratio log(L2 control / L2 FCR) over the images both fooled (at least "
        f"{MIN_PAIRS} pairs, else not tested): geometric-mean ratio with a paired bootstrap "
        f"interval, two-sided paired t-test, Holm over the {family} primary tests of {part}; "
        f"equivalence only where TOST (margin +-{100 * MARGIN:.0f} %, Holm over the same "
        f"{family}) shows it, else 'not shown different'. Secondary cells are exploratory: "
        "unadjusted, and no claim rests on them."
    )


def _longer_budget(v: View) -> list[Block]:
    """The primary cells at the longer budget of the convergence check (its own Holm
    family), with their answer, where they were run."""
    longer = max((s for s, src, _ in v.ddn if src == "fcr"), default=v.main)
    if longer == v.main:
        return []
    prim = cells(v, PRIMARY, steps=longer)
    verdict = verdicts(prim)
    n = max((c.attacked for c in prim), default=0)
    budget = f", {longer} steps, first {n} images"
    note = (
        f"Region DDN at {longer} steps on the first {n} images (the convergence check); Holm "
        f"over these {sum(c.tested for c in prim)} tests. p-values unadjusted."
    )
    return [
        Block("h3", f"Primary cells at {longer} steps ({v.part})"),
        Block("p", answer(v.part, prim, verdict, budget)),
        Block("table", table=cell_table(prim, verdict, v.labels, note)),
    ]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    """Per part: the design (named before the results), the answer, the primary and
    secondary cells, the PGD-L2 second view, the convergence check (with the primary cells
    at its longer budget, on which the answer rests where the order of the regions changes),
    the cost and a forest plot of the tested ratios."""
    blocks: list[Block] = []
    for part in res.parts(exp):
        v = view(res, exp, part, PRIMARY)
        prim, sec = cells(v, PRIMARY), cells(v, SECONDARY)
        v_prim, v_sec = verdicts(prim), verdicts(sec, adjust=False)
        areas = sorted({t for s, src, t in v.ddn if s == v.main})
        converged, holds = convergence_view(v)
        main_answer = answer(v.part, prim, v_prim)
        if not holds:
            main_answer += (
                " The order of the regions changes at the longer budget of the convergence "
                "check: read the answer at that budget (below)."
            )
        blocks += [
            Block("h3", f"Design ({v.part})"),
            Block("p", res.scale_note(exp, part)),
            Block("p", _design(v.part, v.main, areas, sum(c.tested for c in prim))),
            Block("p", main_answer),
            Block("h3", f"Primary cells ({v.part})"),
            Block(
                "table",
                table=cell_table(
                    prim,
                    v_prim,
                    v.labels,
                    "Ratios above 1: the control needs more L2 than the FCR. p-values "
                    "unadjusted; the verdicts use the Holm-adjusted ones.",
                ),
            ),
        ]
        if sec:
            note = "Exploratory: unadjusted tests on the first images only."
            blocks += [
                Block("h3", f"Secondary cells, exploratory ({v.part})"),
                Block("table", table=cell_table(sec, v_sec, v.labels, note)),
            ]
        blocks += pgd_view(v) + converged + _longer_budget(v) + [cost_note(v)]
        shown = [c for c in prim + sec if c.tested]
        if shown:
            png = figures.forest_plot(
                figdir / f"{exp}-{v.part}.png",
                f"L2 in the control / L2 in the FCR, geometric mean, 95 % CI ({v.part})",
                [
                    (
                        f"{v.labels[c.model]}, t={c.t}, {LABELS[c.control]}",
                        c.test.ratio,
                        c.test.lo,
                        c.test.hi,
                        c.control in PRIMARY,
                    )
                    for c in shown
                ],
                band=1 + MARGIN,
            )
            caption = (
                f"Geometric-mean L2 ratios of the tested cells ({v.part}); filled: primary, "
                f"open: secondary; grey: +-{100 * MARGIN:.0f} %"
            )
            blocks.append(Block("img", caption, src=f"{figdir.name}/{png.name}"))
    return blocks + [Block("p", note) for note in res.notes(exp)]


EXPERIMENT = Experiment(
    "region-thesis",
    "is the FCR a better place to perturb? Paired log-ratio tests against equal-area controls",
    "Beyond the paper",
    "paired",
    parts,
    section,
    notes="Each ImageNet network sees the images at its own input size (Lite0 224 px, Lite2 "
    "260 px, resized by 256/224 of it and centre-cropped); an image is attacked only if both "
    "networks classify it correctly.",
    in_all=False,
)
