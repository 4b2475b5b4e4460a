"""``fcrattack demo``: on the bundled samples with the embedded default model, the FCR region
attack (region DDN, the recommended one) and the paper's Algorithm 1 taken literally (FCR with
the paper's CIFAR-10 settings, last and best iterate), all on the same FCR mask and optimised
for the saved 8-bit images, written as an HTML page with per-image results."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from .._version import __version__
from ..attacks import FCR, Attack, AttackResult, RegionDDN
from ..base.outputs import OutputFolder
from ..base.store import write_json, write_jsonl
from ..cam import fcr_mask
from ..data import samples
from ..metrics import CONVENTIONS
from ..models import default_model
from ..report import image_table, write_page
from ..report.pages import picture_paths
from .cam_maps import compute_cams
from .summary import png_not_adversarial, rounded

log = logging.getLogger(__name__)

#: the bundled samples
SAMPLES = 40
#: what the demo writes at the top of its folder
DEMO_OUTPUTS = ("img", "index.html", "results.jsonl", "summary.json")


def run_demo(
    out: str | Path,
    *,
    n: int = 40,
    seed: int = 0,
    device: torch.device | None = None,
    quiet: bool = False,
    overwrite: bool = False,
) -> tuple[dict[str, dict[str, float]], Path]:
    """Run the demo into ``out``; returns (run name -> summary, the page's path).

    Args:
        out: the output folder (created): index.html, img/, results.jsonl, summary.json;
            guarded as every command's (``fcrattack.base.outputs.OutputFolder``): a folder
            of another command, or holding such files that no fcrattack run wrote, is
            refused, and a finished demo too, unless ``overwrite``.
        n: the number of bundled samples, 1-40 (``SAMPLES``).
        seed: the attacks' seed.
        device: where to run (default: the CPU).
        quiet: no progress bar.
        overwrite: delete the files of an earlier demo in ``out`` first.
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= SAMPLES:
        raise ValueError(f"n must be a number of bundled samples, 1-{SAMPLES}, got {n!r}")
    with OutputFolder(out, "demo", names=DEMO_OUTPUTS, overwrite=overwrite) as folder:
        folder.record([*DEMO_OUTPUTS[1:], *picture_paths(n, 3)])
        with folder.writing():
            done = _demo(folder.dir, n, seed, device or torch.device("cpu"), quiet)
            folder.finish()
    return done


def _demo(
    out: Path, n: int, seed: int, device: torch.device, quiet: bool
) -> tuple[dict[str, dict[str, float]], Path]:
    """The work of ``run_demo`` in its opened folder ``out``."""
    t0 = time.perf_counter()
    model = default_model().to(device)
    data = samples(n)
    cams = compute_cams(model, data, device, len(data), None, True, quiet)
    mask = fcr_mask(cams, 0.2)
    paper = f"fcr ({FCR.label})"
    runs: dict[str, Attack] = {
        f"region-ddn ({RegionDDN.label})": RegionDDN(model, t=0.2, quantize=True, seed=seed),
        f"{paper}, select=last": FCR.paper(
            model, "cifar10", select="last", quantize=True, seed=seed
        ),
        f"{paper}, select=best": FCR.paper(
            model, "cifar10", select="best", quantize=True, seed=seed
        ),
    }
    results: dict[str, AttackResult] = {}
    for name, attack in runs.items():
        results[name] = attack.run(data.images, data.labels, mask=mask, ids=data.ids)
        log.info("%s done (%.1f s elapsed)", name, time.perf_counter() - t0)
    table = image_table(out, data.images, data.labels, data.ids, data.classes, results, cams=cams)
    summaries = {name: res.summary() for name, res in results.items()}
    records = {name: res.records(data.ids) for name, res in results.items()}
    write_jsonl(
        out / "results.jsonl",
        [{"run": name, **row} for name, rows in records.items() for row in rows],
    )
    write_json(
        out / "summary.json",
        rounded(
            {
                "model": "default",
                "n_images": len(data),
                "summaries": summaries,
                "png_not_adversarial": {
                    name: png_not_adversarial(rows, name) for name, rows in records.items()
                },
                "conventions": CONVENTIONS,
            }
        ),
    )
    intro = (
        f"On {len(data)} bundled CIFAR-10 test images with fcrattack's embedded default model "
        "(ResNet-20), all on the same FCR mask (Grad-CAM >= 0.2) and optimised for the saved "
        "8-bit images. region-ddn is the FCR region attack fcrattack recommends: a minimum-L2 "
        "attack (DDN) inside the mask, 100 steps. fcr is the paper's Algorithm 1 taken "
        "literally, with its CIFAR-10 settings (t=0.2, T=0.03, lr=10, N=20, beta=1): "
        f"{FCR.caveat} select=last returns its last iterate, select=best keeps, per image, "
        f"the smallest-L2 successful iterate. fcrattack {__version__}."
    )
    page = write_page(out / "index.html", "fcrattack demo", intro, summaries, table)
    return summaries, page
