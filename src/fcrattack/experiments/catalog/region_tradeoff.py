"""Beyond the paper: region DDN's L2/L0 trade-off across FCR thresholds t, against C&W at the
paper's settings on the same images."""

from __future__ import annotations

from pathlib import Path

from ...viz import figures
from ...viz.document import Block, Table, fmt
from ..machinery.results import Results, mean, mean_cell, model_label, ratio, val
from ..machinery.spec import R20, R32, AttackSetting, Experiment, Part, Scale, cifar

THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
#: C&W at the paper's settings at both scales (c = 1, lr = 0.01, 1,000 steps)
PAPER_CW_STEPS = 1000


def parts(s: Scale) -> list[Part]:
    runs = [
        AttackSetting(
            "cw", "cw", "C&W (c=1, lr=0.01, 1000 steps)", {"steps": PAPER_CW_STEPS}, paper_row="C&W"
        )
    ]
    runs += [
        AttackSetting(
            f"region-ddn-t-{t:.1f}",
            "region-ddn",
            f"region DDN t={t:.1f}",
            {"steps": s.ddn_steps, "t": t},
        )
        for t in THRESHOLDS
    ]
    return [Part(cifar(s, s.n_beyond), [R20, R32], runs)]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        cw_spec = next(r for r in part["runs"] if r["attack"] == "cw")
        ddn_runs = [r for r in part["runs"] if r["attack"] == "region-ddn"]
        rows, l2s, l0s, ref_l2, ref_l0 = [], [], [], [], []
        for m in part["models"]:
            cw, cw_txt = res.cell(exp, pname, m["name"], cw_spec)
            cells = {r["params"]["t"]: res.cell(exp, pname, m["name"], r) for r in ddn_runs}
            base = cells.get(0.0, (None, ""))[0]
            rows.append(
                [
                    model_label(m),
                    cw_spec["label"],
                    cw_txt,
                    mean_cell(cw, "l2", 3),
                    mean_cell(cw, "l0", 0),
                    "1.00",
                    fmt(ratio(val(cw, "l2"), val(base, "l2"))),
                    "100.0",
                    "-",
                ]
            )
            ts, l2, l0 = [], [], []
            for run in ddn_runs:
                t = run["params"]["t"]
                a, txt = cells[t]
                l0_cw = ratio(val(a, "l0"), val(cw, "l0"))
                area = mean(res.get(exp, pname, m["name"], run["key"]), "mask_fraction")
                rows.append(
                    [
                        model_label(m),
                        run["label"],
                        txt,
                        mean_cell(a, "l2", 3),
                        mean_cell(a, "l0", 0),
                        fmt(ratio(val(a, "l2"), val(cw, "l2"))),
                        fmt(ratio(val(a, "l2"), val(base, "l2"))),
                        fmt(l0_cw and 100 * l0_cw, 1),
                        fmt(area, 3),
                    ]
                )
                if a is not None:
                    ts.append(t)
                    l2.append(a["l2"])
                    l0.append(a["l0"])
            l2s.append((f"region DDN, {m['label']}", ts, l2))
            l0s.append((f"region DDN, {m['label']}", ts, l0))
            if cw is not None:
                ref_l2.append((f"C&W, {m['label']}", cw["l2"]))
                ref_l0.append((f"C&W, {m['label']}", cw["l0"]))
        steps = {r["params"]["steps"] for r in ddn_runs}
        blocks.append(
            Block(
                "table",
                table=Table(
                    [
                        "model",
                        "attack",
                        "ASR",
                        "mean L2 [0,1]",
                        "mean L0 values",
                        "L2 / C&W",
                        "L2 / region DDN t=0",
                        "L0 % of C&W",
                        "mean FCR area",
                    ],
                    rows,
                    [
                        res.scale_note(exp, part),
                        f"region DDN: {'/'.join(map(str, sorted(steps)))} "
                        "steps at every t (t = 0: the whole image, i.e. unrestricted DDN); C&W "
                        f"{cw_spec['params']['steps']} steps, c = 1, lr = 0.01, on the same "
                        "images. Norms "
                        "are means over the successful images (of 3 x 32 x 32 values).",
                    ],
                ),
            )
        )
        png = figures.panels_plot(
            figdir / f"{exp}-{pname}.png",
            f"region DDN vs threshold t ({pname})",
            "FCR threshold t (0 = whole image)",
            [
                ("mean L2 [0,1] (successful images)", l2s, ref_l2),
                ("mean L0 (changed values)", l0s, ref_l0),
            ],
        )
        blocks.append(
            Block(
                "img",
                f"Mean L2 and L0 of region DDN against t ({pname}); dashed: "
                "C&W at the paper's settings",
                src=f"{figdir.name}/{png.name}",
            )
        )
    blocks += [Block("p", note) for note in res.notes(exp)]
    return blocks


EXPERIMENT = Experiment(
    "region-tradeoff",
    "region DDN across FCR thresholds t against C&W (L2 and L0 trade-off)",
    "Beyond the paper",
    "attack",
    parts,
    section,
    notes="C&W runs at the paper's settings (1,000 steps, abort-early) at both scales; region "
    "DDN uses the scale's step count at every t.",
)
