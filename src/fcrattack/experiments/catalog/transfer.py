"""Tables 4/5: transferability, a source x target matrix of ASR for PGD, M-DI2-FGSM, C&W, FCR
and region DDN."""

from __future__ import annotations

from pathlib import Path

from ...viz.document import Block, Table, diff, fmt, rate_interval
from ..machinery.results import Results
from ..machinery.spec import (
    R20,
    R32,
    VGG11,
    AttackSetting,
    Experiment,
    Part,
    Scale,
    cifar,
    cw_run,
    fcr_run,
    pgd_run,
    region_ddn_run,
)


def parts(s: Scale) -> list[Part]:
    runs = [
        pgd_run(),
        AttackSetting("mifgsm", "mifgsm", "M-DI2-FGSM", paper_row="M-DI2-FGSM"),
        cw_run(s),
        fcr_run(),
        region_ddn_run(s),
    ]
    return [Part(cifar(s), [VGG11, R20, R32], runs)]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        paper = res.paper["transfer"].get(pname, {})
        models = part["models"]
        rows = []
        for src in models:
            for run in part["runs"]:
                recs = res.get(exp, pname, src["name"], run["key"])
                cells = [f"{src['label']} ({src['stands_for']})", run["label"]]
                p_row = paper.get(src["stands_for"], {}).get(run.get("paper_row") or "", {})
                for tgt in models:
                    n = len(recs)
                    if not n:
                        cells.append("not run")
                        continue
                    k = sum(r["transfer"][tgt["name"]] for r in recs)
                    p = p_row.get(tgt["stands_for"])
                    lo, hi = rate_interval(k, n)
                    cells.append(
                        f"{100 * k / n:.1f} [{lo:.1f}, {hi:.1f}] (paper {fmt(p)}, "
                        f"diff {diff(100 * k / n, p, (lo, hi))})"
                    )
                rows.append(cells)
        n = res.part_status(exp, pname).get("n_eligible", "?")
        blocks.append(
            Block(
                "table",
                table=Table(
                    ["source", "attack"] + [f"-> {t['label']} ({t['stands_for']})" for t in models],
                    rows,
                    [
                        res.scale_note(exp, part),
                        f"ASR (%) on each target of the adversarial examples crafted once on the "
                        f"source, over n = {n} images every model classifies correctly; the "
                        "diagonal is white-box. Paper cells are those of the model each of ours "
                        "stands for.",
                    ],
                ),
            )
        )
    blocks += [Block("p", note) for note in res.notes(exp)]
    return blocks


EXPERIMENT = Experiment(
    "transfer",
    "Transferability (source x target ASR)",
    "Tables 4/5",
    "transfer",
    parts,
    section,
    notes="ImageNet transfer (Table 5) needs several ImageNet models; only EfficientNet-Lite0 "
    "is available here, so only the CIFAR-10 matrix is run.",
)
