"""Table 2: the white-box comparison of FCR with PGD, C&W, JSMA and One-Pixel (ASR, PSNR, L2,
L0, Linf, time)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...viz.document import Block, Table, diff, fmt, rate
from ..machinery.results import Results, asr_diff, ci, mean_cell, model_label, val
from ..machinery.spec import (
    EFFNET,
    R20,
    UNNAMED,
    AttackSetting,
    Experiment,
    Part,
    Scale,
    cifar,
    cw_run,
    fcr_run,
    imagenet,
    pgd_run,
    region_ddn_run,
    same_l2_runs,
    stand_in,
)


def l0_runs(s: Scale, jsma: dict[str, Any]) -> list[AttackSetting]:
    """JSMA (options ``jsma``; a capped iteration count shows in the label) and One-Pixel."""
    label = f"JSMA (<= {jsma['steps']} iterations)" if "steps" in jsma else "JSMA"
    return [
        AttackSetting("jsma", "jsma", label, dict(jsma), paper_row="JSMA"),
        AttackSetting(
            "onepixel", "onepixel", "One-Pixel (5 px)", dict(s.onepixel), paper_row="One-pixel"
        ),
    ]


def parts(s: Scale) -> list[Part]:
    base = [pgd_run("PGD (Linf 16/255)"), cw_run(s, "C&W (L2)")]
    tail = [fcr_run(), *same_l2_runs(s), region_ddn_run(s)]
    return [
        Part(cifar(s), [R20], base + l0_runs(s, {}) + tail),
        Part(
            imagenet(s),
            [stand_in(EFFNET, UNNAMED)],
            base + l0_runs(s, s.jsma_imagenet) + tail,
        ),
    ]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        paper = res.paper["comparison"].get(pname, {})
        m = part["models"][0]
        rows = []
        for run in part["runs"]:
            a, txt = res.cell(exp, pname, m["name"], run)
            p = (
                paper.get("rows", {}).get(run.get("paper_row") or "", {})
                if not run.get("budget_from")
                else {}
            )
            rows.append(
                [
                    run["label"],
                    txt,
                    fmt(p.get("asr")),
                    asr_diff(a, p.get("asr")),
                    _after_uint8(a),
                    fmt(val(a, "psnr")),
                    mean_cell(a, "psnr_255", 1),
                    fmt(p.get("psnr")),
                    diff(val(a, "psnr_255"), p.get("psnr"), ci(a, "psnr_255")),
                    mean_cell(a, "l2", 3),
                    fmt(val(a, "l2_255")),
                    fmt(p.get("l2")),
                    mean_cell(a, "l0", 0),
                    fmt(val(a, "l0_pixels"), 0),
                    fmt(val(a, "linf"), 4),
                    fmt(val(a, "linf_255"), 1),
                    fmt(val(a, "time_s"), 3),
                ]
            )
        blocks.append(
            Block(
                "table",
                table=Table(
                    [
                        "attack",
                        "ASR (ours)",
                        "paper",
                        "diff",
                        "ASR after uint8",
                        "PSNR (MAX=1)",
                        "PSNR_255",
                        "paper PSNR",
                        "diff (PSNR_255)",
                        "L2 [0,1]",
                        "L2 [0,255]",
                        "paper L2",
                        "L0 values",
                        "L0 px",
                        "Linf [0,1]",
                        "Linf [0,255]",
                        "s / image",
                    ],
                    rows,
                    [
                        res.scale_note(exp, part),
                        f"Paper's model: {paper.get('model', '?')}. Ours: "
                        f"{model_label(m)}. The paper reports ASR, PSNR and L2 only.",
                    ],
                ),
            )
        )
    return blocks


def _after_uint8(a: dict[str, float] | None) -> str:
    """The rate of a cell's images still adversarial after rounding to 8 bits ("-": none)."""
    if a is None or not a["n"] or "n_success_uint8" not in a:
        return "-"
    return rate(int(a["n_success_uint8"]), int(a["n"]))


EXPERIMENT = Experiment(
    "comparison",
    "White-box comparison with PGD, C&W, JSMA, One-Pixel",
    "Table 2",
    "attack",
    parts,
    section,
    notes="The paper does not name its ImageNet model. The cpu scale stops JSMA on 224-px "
    "images after 200 iterations (at most 400 changed values).",
)
