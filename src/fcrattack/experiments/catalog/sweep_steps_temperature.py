"""Fig. 4: the FCR attack's ASR against the number of steps N and the inverse temperature T."""

from __future__ import annotations

import functools
from pathlib import Path

from ...viz import figures
from ...viz.document import Block, Table
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

STEPS = (1, 2, 5, 10, 20, 30)
TEMPERATURES = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)


def parts(s: Scale) -> list[Part]:
    out = []
    for data, model, t_default in (
        (cifar(s), R20, 0.03),
        (imagenet(s), stand_in(EFFNET, "VGG-16"), 0.05),
    ):
        runs = [fcr_run(f"fcr-steps-{n}", f"FCR N={n}", steps=n, T=t_default) for n in STEPS]
        runs += [fcr_run(f"fcr-T-{t}", f"FCR T={t}", steps=20, T=t) for t in TEMPERATURES]
        out.append(Part(data, [model], runs))
    return out


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    claim = res.paper["sweep_steps_temperature"]
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        for prefix, key, xlabel, log_x in (
            ("fcr-steps-", "steps", "steps N", False),
            ("fcr-T-", "T", "inverse temperature T", True),
        ):
            rows, xs, ys, _ = sweep_rows(res, exp, part, prefix, functools.partial(param, key))
            paper_pts = []
            if key == "steps":
                pts = claim["asr_at_steps"].get(pname, {})
                paper_pts = [("ASR", [float(k) for k in pts], list(pts.values()))]
            png = figures.line_plot(
                figdir / f"{exp}-{pname}-{key}.png",
                f"Fig. 4 ({pname}): ASR vs {key}",
                xlabel,
                "ASR (%)",
                [("ours", xs, ys)],
                paper_pts,
                log_x=log_x,
            )
            blocks.append(
                Block(
                    "table",
                    table=Table(
                        SWEEP_HEADERS,
                        rows,
                        [
                            res.scale_note(exp, part),
                            f"Paper ({claim['models'][pname]}): {claim['claim']}.",
                        ],
                    ),
                )
            )
            blocks.append(Block("img", f"ASR vs {key} ({pname})", src=f"{figdir.name}/{png.name}"))
    return blocks


EXPERIMENT = Experiment(
    "sweep-steps-temperature",
    "FCR ASR vs steps N and inverse temperature T",
    "Fig. 4",
    "attack",
    parts,
    section,
)
