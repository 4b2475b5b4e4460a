"""Fig. 2: the importance of the FCRs, measured as the accuracy of each model on FCR-only
inputs x * mask and on non-FCR-only inputs x * (1 - mask)."""

from __future__ import annotations

from pathlib import Path

from ...viz import figures
from ...viz.document import Block, Table, fmt, rate
from ..machinery.results import Results, model_label
from ..machinery.spec import R20, R32, VGG11, Experiment, Part, Scale, cifar


def parts(s: Scale) -> list[Part]:
    return [Part(cifar(s), [R20, R32, VGG11], [])]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    claim = res.paper["fcr_importance"]["cifar10"]
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        rows, groups = [], []
        bars: dict[str, list[float]] = {"FCR-only": [], "non-FCR-only": []}
        for m in part["models"]:
            recs = res.get(exp, pname, m["name"], "importance")
            n = len(recs)
            fcr = sum(r["correct_fcr"] for r in recs)
            non = sum(r["correct_nonfcr"] for r in recs)
            area = sum(r["mask_fraction"] for r in recs) / n if n else float("nan")
            rows.append(
                [
                    model_label(m),
                    str(n),
                    rate(fcr, n),
                    rate(non, n),
                    f">= {claim['fcr_only_accuracy_min']:g} %",
                    "very low",
                    fmt(area, 3),
                ]
            )
            groups.append(m["label"])
            bars["FCR-only"].append(100 * fcr / n if n else 0.0)
            bars["non-FCR-only"].append(100 * non / n if n else 0.0)
        t = res.config[exp]["t"]
        blocks.append(
            Block(
                "table",
                table=Table(
                    [
                        "model",
                        "n",
                        "acc. FCR-only x*mask (ours)",
                        "acc. non-FCR-only x*(1-mask) (ours)",
                        "paper FCR-only",
                        "paper non-FCR-only",
                        "mean FCR area",
                    ],
                    rows,
                    [
                        res.scale_note(exp, part),
                        f"Threshold t = {t}; Grad-CAM of the true class; "
                        "accuracy over the n images every model classifies correctly (100 % on the "
                        f"clean images by construction). Paper: {claim['claim']}.",
                    ],
                ),
            )
        )
        png = figures.bar_plot(
            figdir / f"{exp}-{pname}.png",
            f"Fig. 2: accuracy, t = {t}",
            groups,
            bars,
            "accuracy (%)",
            hline=claim["fcr_only_accuracy_min"],
        )
        blocks.append(
            Block(
                "img",
                f"Fig. 2 ({pname}): accuracy on FCR-only and non-FCR-only inputs",
                src=f"{figdir.name}/{png.name}",
            )
        )
    return blocks


EXPERIMENT = Experiment(
    "fcr-importance",
    "Importance of the FCRs (accuracy on FCR-only / non-FCR-only inputs)",
    "Fig. 2",
    "importance",
    parts,
    section,
)
