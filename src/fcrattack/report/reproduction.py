"""The reproduction report: every experiment of an output folder as tables beside the paper's
numbers (with differences, denominators, scale and metric conventions), PNG plots and image
panels, written as ``report.md`` and ``report.html``."""

from __future__ import annotations

import logging
from pathlib import Path

from ..base.outputs import refuse_links
from ..base.store import replace_file
from ..experiments import EXPERIMENTS, Results
from ..experiments.machinery.spec import READABLE
from ..experiments.reproduction import saved_configs
from ..metrics import CONVENTIONS
from ..viz.document import Block, Table, fmt, to_html, to_markdown

log = logging.getLogger(__name__)

TITLE = "FCR attack: reproduction report"
PROTOCOL = (
    "Protocol: ASR is over the images that every model of the experiment classifies "
    "correctly (the denominator n is given with every rate). The paper's L2 values fit "
    "neither pixel scale exactly (e.g. PGD at Linf 16/255 cannot exceed L2 = 3.48 on a CIFAR "
    "image in [0, 1]); compare their ratios, not their values. Differences (diff) are ours "
    "minus the paper's, in points. The experiments attack floating-point images, as the "
    "paper does (quantize=False), and ASR counts those; minimum-norm attacks (C&W, region "
    "DDN) stop just past the decision boundary, so many of their images are no longer "
    "adversarial once rounded to 8 bits: Table 2 gives that 'ASR after uint8' too, and every "
    "record keeps it (success_uint8)."
)


def _overview(res: Results) -> list[Block]:
    env = res.env
    blocks = [
        Block("h1", TITLE),
        Block(
            "p",
            (
                f"fcrattack {env.get('fcrattack', '?')}, torch {env.get('torch', '?')}, device "
                f"{env.get('device', '?')} ({env.get('device_name', '')}), git "
                f"{env.get('git_commit') or 'unknown'}, seed {env.get('seed', '?')}, run at "
                f"{env.get('time', '?')}. Paper numbers: {res.paper['source']}."
            ),
        ),
        Block("p", "Conventions: " + CONVENTIONS),
        Block("p", PROTOCOL),
    ]
    rows, warnings = [], []
    for exp in EXPERIMENTS:
        if exp not in res.config:
            continue
        cfg, st = res.config[exp], res.status.get(exp, {})
        parts = st.get("parts", {})
        scale = "; ".join(
            f"{name}: n = {parts.get(name, {}).get('n_eligible', '?')} of "
            f"{parts.get(name, {}).get('n_drawn', '?')}, {len(p['models'])} model(s)"
            for p in cfg["parts"]
            for name in [p["data"]["dataset"]]
        )
        busy = sum(
            r.get("time_s", 0.0) for (e, *_), recs in res.groups.items() if e == exp for r in recs
        )
        rows.append(
            [
                exp,
                cfg["paper_ref"],
                cfg["scale"],
                f"v{cfg['version']}",
                scale,
                fmt(st.get("wall_s"), 1),
                fmt(busy, 1),
            ]
        )
        for part in parts.values():
            for m in part.get("models", {}).values():
                warnings += [f"{exp}: {w}" for w in m.get("preflight", [])]
    blocks.append(
        Block(
            "table",
            table=Table(
                [
                    "experiment",
                    "paper",
                    "scale",
                    "config",
                    "images (attacked of drawn)",
                    "wall time of the last run (s)",
                    "attack time, all records (s)",
                ],
                list(rows),
                [
                    "The 'paper' scale is the paper's (1,000 images); 'cpu' is shrunk to run on a "
                    "CPU, "
                    "so its rates carry large sampling error (a 95 % interval of about +-10 "
                    "points at "
                    "n = 100). A resumed run's wall time covers only the work it did; the attack "
                    "time "
                    "sums the per-image times of every record."
                ],
            ),
        )
    )
    blocks.append(Block("h3", "Pre-flight checks"))
    blocks.append(
        Block(
            "p",
            "WARNING: " + " | ".join(warnings)
            if warnings
            else "All models passed the pre-flight checks (logits, not probabilities; "
            "deterministic forward passes; non-zero input gradient).",
        )
    )
    return blocks


def render(out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``report.md``, ``report.html`` and ``figures/*.png`` into ``out_dir`` from its
    records; returns the two report paths."""
    out = Path(out_dir)
    # what the report reads and writes stays inside the folder (a link out is refused)
    names = ["report.md", "report.html", "figures", "config.json", "status.json", "env.json"]
    names += [p.name for p in out.glob("records*.jsonl*")]
    names += [f"figures/{p.name}" for p in (out / "figures").glob("*")]
    refuse_links(out, names)
    saved_configs(out)  # a config.json of another program: refused, before anything is written
    res = Results(out)
    if not res.config:
        raise FileNotFoundError(f"{out} has no config.json: run an experiment into it first")
    old = sorted(e for e, c in res.config.items() if c.get("version") not in READABLE)
    if old:
        raise ValueError(
            f"{out} holds results of a config version this fcrattack cannot read "
            f"({', '.join(old)}; it reads versions {', '.join(map(str, READABLE))}): rerun them"
        )
    figdir = out / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    blocks = _overview(res)
    for exp, experiment in EXPERIMENTS.items():
        if exp not in res.config:
            continue
        cfg = res.config[exp]
        blocks.append(Block("h2", f"{cfg['paper_ref']}: {cfg['title']} ({exp})"))
        blocks += experiment.section(res, exp, figdir)
    md, page = out / "report.md", out / "report.html"
    replace_file(md, to_markdown(blocks).encode("utf-8"))
    replace_file(page, to_html(blocks, TITLE).encode("utf-8"))
    log.info("report written to %s and %s", md, page)
    return md, page
