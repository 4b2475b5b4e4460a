"""Table 1: the white-box FCR attack (clean accuracy, ASR) and PGD-L2 and C&W given the L2
that FCR reached on each image."""

from __future__ import annotations

from pathlib import Path

from ...viz.document import Block, Table, diff, fmt, rate, rate_interval
from ..machinery.results import Results, asr_diff, mean_cell, model_label
from ..machinery.spec import (
    EFFNET,
    R20,
    VGG11,
    Experiment,
    Part,
    Scale,
    cifar,
    fcr_run,
    imagenet,
    region_ddn_run,
    same_l2_runs,
    stand_in,
)


def parts(s: Scale) -> list[Part]:
    runs = [fcr_run(), *same_l2_runs(s), region_ddn_run(s)]
    return [
        Part(cifar(s), [VGG11, R20], runs),
        Part(imagenet(s), [stand_in(EFFNET, "ResNet-34")], runs),
    ]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        st = res.part_status(exp, pname)
        p_asr = res.paper["whitebox"].get(pname, {})
        p_clean = res.paper["clean_accuracy"].get(pname, {})
        p_same = res.paper["whitebox_same_l2"].get(pname, {})
        runs = {r["key"]: r for r in part["runs"]}
        rows = []
        for m in part["models"]:
            if m.get("max_images") == 0:  # only selects the images (whitebox-imagenet)
                continue
            ms = st.get("models", {}).get(m["name"], {})
            clean = ms.get("clean_accuracy")
            clean_txt = rate(ms["clean_correct"], st["n_drawn"]) if clean is not None else "-"
            clean_ci = (
                rate_interval(ms["clean_correct"], st["n_drawn"]) if clean is not None else None
            )
            paper_clean = p_clean.get(m["stands_for"])
            fcr, fcr_txt = res.cell(exp, pname, m["name"], runs["fcr"])
            paper_fcr = p_asr.get(m["stands_for"])
            row = [
                model_label(m),
                clean_txt,
                fmt(paper_clean),
                diff(100 * clean if clean is not None else None, paper_clean, clean_ci),
                fcr_txt,
                fmt(paper_fcr),
                asr_diff(fcr, paper_fcr),
                mean_cell(fcr, "l2", 3),
            ]
            for key, paper_key in (("pgdl2-at-fcr-l2", "PGD"), ("cw-at-fcr-l2", "C&W")):
                a, txt = res.cell(exp, pname, m["name"], runs[key])
                row += [
                    txt,
                    fmt(p_same.get(paper_key)),
                    asr_diff(a, p_same.get(paper_key)),
                ]
            a, txt = res.cell(exp, pname, m["name"], runs["region-ddn"])
            row += [txt, mean_cell(a, "l2", 3)]
            rows.append(row)
        headers = [
            "model",
            "clean acc. (ours, of drawn)",
            "paper",
            "diff",
            "FCR ASR (ours)",
            "paper",
            "diff",
            "FCR L2 [0,1]",
            "PGD-L2 @ FCR L2 (ours)",
            "paper",
            "diff",
            "C&W @ FCR L2 (ours)",
            "paper",
            "diff",
            "region DDN ASR (extra)",
            "region DDN L2 [0,1]",
        ]
        blocks.append(
            Block(
                "table",
                table=Table(
                    headers,
                    rows,
                    [
                        res.scale_note(exp, part),
                        "Clean accuracy is over all drawn images; ASR over the n attacked images. "
                        "Same-L2 "
                        "rows: PGD-L2 and C&W with a per-image L2 budget equal to the L2 FCR "
                        "reached on "
                        "that image (the paper's numbers are per data set). FCR uses the paper's "
                        "hyper-parameters (literal J_T, last iterate).",
                    ],
                ),
            )
        )
    return blocks


EXPERIMENT = Experiment(
    "whitebox",
    "White-box FCR attack (clean accuracy, ASR; same-L2 PGD and C&W)",
    "Table 1",
    "attack",
    parts,
    section,
)
