"""Fig. 5: the FCR attack's ASR and L0 against the threshold t."""

from __future__ import annotations

import functools
from pathlib import Path

from ...viz import figures
from ...viz.document import Block, Table, fmt
from ..machinery.results import SWEEP_HEADERS, Results, param, sweep_rows
from ..machinery.spec import (
    EFFNET,
    R20,
    Experiment,
    Part,
    Scale,
    cifar,
    fcr_run,
    imagenet,
    stand_in,
)

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def parts(s: Scale) -> list[Part]:
    runs = [fcr_run(f"fcr-t-{t:.1f}", f"FCR t={t:.1f}", t=t) for t in THRESHOLDS]
    return [Part(cifar(s), [R20], runs), Part(imagenet(s), [stand_in(EFFNET, "VGG-16")], runs)]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    claim = res.paper["sweep_threshold"]
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        rows, xs, ys, aggs = sweep_rows(res, exp, part, "fcr-t-", functools.partial(param, "t"))
        pts = claim.get(pname, {})
        for row in rows:
            p = pts.get(row[0].split("=")[-1], {})
            row += [fmt(p.get("asr")), fmt(p.get("l0"), 0)]
        blocks.append(
            Block(
                "table",
                table=Table(
                    [*SWEEP_HEADERS, "paper ASR", "paper L0"],
                    rows,
                    [res.scale_note(exp, part), f"Paper: {claim['claim']}."],
                ),
            )
        )
        paper_x = [float(k) for k in pts]
        png = figures.line_plot(
            figdir / f"{exp}-{pname}-asr.png",
            f"Fig. 5 ({pname}): ASR vs t",
            "threshold t",
            "ASR (%)",
            [("ours", xs, ys)],
            [("ASR", paper_x, [v["asr"] for v in pts.values()])],
        )
        png0 = figures.line_plot(
            figdir / f"{exp}-{pname}-l0.png",
            f"Fig. 5 ({pname}): L0 vs t",
            "threshold t",
            "L0 (changed values)",
            [("ours", xs, [a["l0"] for a in aggs])],
            [("L0", paper_x, [v["l0"] for v in pts.values()])],
        )
        blocks += [
            Block("img", f"ASR vs t ({pname})", src=f"{figdir.name}/{png.name}"),
            Block(
                "img",
                f"L0 vs t ({pname}); the paper's ImageNet L0 exceeds "
                "3 x 224 x 224, so its image size is unclear",
                src=f"{figdir.name}/{png0.name}",
            ),
        ]
    return blocks


EXPERIMENT = Experiment(
    "sweep-threshold", "FCR ASR and L0 vs threshold t", "Fig. 5", "attack", parts, section
)
