"""Figs. 1/3: per image the Grad-CAM heat-map, the FCR, and the perturbations and adversarial
examples of PGD, C&W and FCR."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...viz import figures
from ...viz.document import Block, Table, fmt
from ..machinery.results import Results, mean_cell, model_label, val
from ..machinery.spec import (
    EFFNET,
    R20,
    Experiment,
    Part,
    Scale,
    cifar,
    cw_run,
    fcr_run,
    imagenet,
    pgd_run,
    stand_in,
)


def parts(s: Scale) -> list[Part]:
    runs = [pgd_run(), cw_run(s), fcr_run()]
    return [
        Part(cifar(s, 4 * s.n_visual), [R20], runs),
        Part(imagenet(s, 2 * s.n_visual), [stand_in(EFFNET, "ResNet-50")], runs),
    ]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for path in sorted((res.dir / "artifacts").glob("visual-*.pt")):
        art = torch.load(path, map_location="cpu", weights_only=True)
        png = figures.panel(
            figdir / f"{path.stem}.png",
            art,
            f"{path.stem}: image, Grad-CAM, FCR, then perturbation (amplified) "
            "and adversarial per attack",
        )
        blocks.append(
            Block(
                "img",
                f"Figs. 1/3 panel ({path.stem}); perturbations scaled to "
                "their own maximum, grey = unchanged",
                src=f"{figdir.name}/{png.name}",
            )
        )
    for part in res.parts(exp):
        blocks += panel_table(res, exp, part)
    return blocks


def panel_table(res: Results, exp: str, part: dict[str, Any]) -> list[Block]:
    """ASR and norms of the panel images, per run."""
    pname, m = part["data"]["dataset"], part["models"][0]
    rows = []
    for run in part["runs"]:
        a, txt = res.cell(exp, pname, m["name"], run)
        rows.append(
            [
                run["label"],
                txt,
                mean_cell(a, "l2", 3),
                fmt(val(a, "linf_255"), 1),
                mean_cell(a, "l0", 0),
                mean_cell(a, "psnr_255"),
            ]
        )
    return [
        Block(
            "table",
            table=Table(
                ["attack", "ASR", "L2 [0,1]", "Linf [0,255]", "L0 values", "PSNR_255"],
                rows,
                [f"Panel images of {model_label(m)} ({pname})."],
            ),
        )
    ]


EXPERIMENT = Experiment(
    "visual",
    "Heat-map, FCR, perturbations and adversarial examples",
    "Figs. 1/3",
    "visual",
    parts,
    section,
)
