"""Fig. 4: the FCR attack's ASR against the number of steps N and the inverse temperature T;
``sweep_rows`` is shared with the threshold sweep (Fig. 5)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..viz import figures
from ..viz.document import Block, Table
from .results import Results, mean_cell
from .spec import EFFNET, R20, Experiment, Part, Scale, cifar, fcr_run, imagenet, stand_in

STEPS = (1, 2, 5, 10, 20, 30)
TEMPERATURES = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
SWEEP_HEADERS = ["setting", "ASR (ours)", "L2 [0,1]", "L0 values", "PSNR_255"]


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


def param(key: str, run: dict[str, Any]) -> float:
    """The value of parameter ``key`` of a run (as saved in config.json)."""
    return float(run["params"][key])


def sweep_rows(
    res: Results,
    exp: str,
    part: dict[str, Any],
    prefix: str,
    value: Callable[[dict[str, Any]], float],
) -> tuple[list[list[str]], list[float], list[float], list[dict[str, float]]]:
    """Table rows, x values, ASRs and aggregates of the runs whose key starts with ``prefix``."""
    pname, m = part["data"]["dataset"], part["models"][0]
    rows, xs, ys, aggs = [], [], [], []
    for run in part["runs"]:
        if not run["key"].startswith(prefix):
            continue
        a, txt = res.cell(exp, pname, m["name"], run)
        x = value(run)
        rows.append(
            [
                run["label"],
                txt,
                mean_cell(a, "l2", 3),
                mean_cell(a, "l0", 0),
                mean_cell(a, "psnr_255"),
            ]
        )
        if a is not None:
            xs.append(x)
            ys.append(a["asr"])
            aggs.append(a)
    return rows, xs, ys, aggs


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
