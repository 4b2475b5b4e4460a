"""Table 3: masked FGSM, eps1 on the FCRs and eps2 elsewhere, over the paper's grid."""

from __future__ import annotations

from pathlib import Path

from ...viz.document import Block, Table, fmt
from ..machinery.results import Results, asr_diff, mean_cell, model_label
from ..machinery.spec import R20, VGG11, AttackSetting, Experiment, Part, Scale, cifar

GRID = (
    (0.03, 0.0),
    (0.03, 0.01),
    (0.03, 0.03),
    (0.03, 0.05),
    (0.05, 0.0),
    (0.05, 0.03),
    (0.05, 0.05),
    (0.08, 0.05),
)


def parts(s: Scale) -> list[Part]:
    runs = [
        AttackSetting(
            f"masked-fgsm-{e1:.2f}-{e2:.2f}",
            "masked-fgsm",
            f"masked FGSM eps1={e1:.2f} eps2={e2:.2f}",
            {"eps1": e1, "eps2": e2},
        )
        for e1, e2 in GRID
    ]
    return [Part(cifar(s), [VGG11, R20], runs)]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        paper = res.paper["masked_fgsm"].get(pname, {})
        rows = []
        for m in part["models"]:
            table = {(e1, e2): v for e1, e2, v in paper.get(m["stands_for"], [])}
            for run in part["runs"]:
                a, txt = res.cell(exp, pname, m["name"], run)
                e1, e2 = run["params"]["eps1"], run["params"]["eps2"]
                p = table.get((e1, e2))
                rows.append(
                    [
                        model_label(m),
                        f"{e1:.2f}",
                        f"{e2:.2f}",
                        txt,
                        fmt(p),
                        asr_diff(a, p),
                        mean_cell(a, "l2", 3),
                    ]
                )
        blocks.append(
            Block(
                "table",
                table=Table(
                    [
                        "model",
                        "eps1 (FCR)",
                        "eps2 (non-FCR)",
                        "ASR (ours)",
                        "paper",
                        "diff",
                        "L2 [0,1]",
                    ],
                    rows,
                    [
                        res.scale_note(exp, part),
                        "eps on [0, 1] pixels (Linf); '-' in the paper "
                        "column: the paper has no such cell for that model.",
                    ],
                ),
            )
        )
    return blocks


EXPERIMENT = Experiment(
    "masked-fgsm",
    "Masked FGSM: eps1 on the FCRs, eps2 elsewhere",
    "Table 3",
    "attack",
    parts,
    section,
)
