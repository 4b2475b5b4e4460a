"""``fcrattack demo``: the FCR attack (paper CIFAR-10 settings, last and best iterate) and region
DDN (the stable region attack, same mask) on the bundled samples with the embedded default
model, written as an HTML page with per-image results."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ._version import __version__
from .attack_run import compute_cams
from .attacks import FCR, Attack, AttackResult, RegionDDN
from .cam import fcr_mask
from .data import samples
from .metrics import CONVENTIONS
from .models import default_model
from .report import image_table, write_page
from .store import output_dir, write_json, write_jsonl

log = logging.getLogger(__name__)


def run_demo(
    out: str | Path,
    *,
    n: int = 40,
    seed: int = 0,
    device: torch.device | None = None,
    quiet: bool = False,
) -> tuple[dict[str, dict[str, float]], Path]:
    """Run the demo into ``out``; returns (run name -> summary, the page's path)."""
    t0 = time.perf_counter()
    device = device or torch.device("cpu")
    out = output_dir(out)
    model = default_model().to(device)
    data = samples(n)
    cams = compute_cams(model, data, device, len(data), None, True, quiet)
    mask = fcr_mask(cams, 0.2)
    runs: dict[str, Attack] = {
        "FCR paper, select=last": FCR.paper(model, "cifar10", select="last", seed=seed),
        "FCR paper, select=best": FCR.paper(model, "cifar10", select="best", seed=seed),
        "region DDN (t=0.2, 100 steps, 8-bit)": RegionDDN(model, t=0.2, quantize=True, seed=seed),
    }
    results: dict[str, AttackResult] = {}
    for name, attack in runs.items():
        results[name] = attack.run(data.images, data.labels, mask=mask, ids=data.ids)
        log.info("%s done (%.1f s elapsed)", name, time.perf_counter() - t0)
    table = image_table(out, data.images, data.labels, data.ids, data.classes, cams, results)
    summaries = {name: res.summary() for name, res in results.items()}
    write_jsonl(
        out / "results.jsonl",
        [{"run": name, **row} for name, res in results.items() for row in res.records(data.ids)],
    )
    write_json(
        out / "summary.json",
        {
            "model": "default",
            "n_images": len(data),
            "summaries": summaries,
            "conventions": CONVENTIONS,
        },
    )
    intro = (
        f"FCR attack, paper CIFAR-10 settings (t=0.2, T=0.03, lr=10, N=20, beta=1), on "
        f"{len(data)} bundled CIFAR-10 test images with fcrattack's embedded default model "
        "(ResNet-20). select=last returns the algorithm's last iterate (the literal "
        "algorithm); select=best keeps, per image, the smallest-L2 successful iterate. "
        "Region DDN is fcrattack's stable minimum-norm attack restricted to the same FCR "
        "mask (docs/reproduction.md explains why the literal algorithm's L2 is large). "
        f"fcrattack {__version__}."
    )
    page = write_page(out / "index.html", "fcrattack demo", intro, summaries, table)
    return summaries, page
