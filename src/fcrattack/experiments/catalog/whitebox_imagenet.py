"""Tables 1 and 2 on ImageNet at 100 photos: the white-box FCR attack, PGD, C&W, PGD-L2 and
C&W at FCR's per-image L2, and region DDN on EfficientNet-Lite0 (224 px), over the images of
``region-thesis`` (the first 100 of the 140 drawn sample photos, seed 0, that Lite0 and Lite2
both classify correctly; Lite2 only decides which images are eligible).

The attacks and their options are those of the ``whitebox`` and ``comparison`` experiments at
the cpu scale (C&W 100 steps, region DDN 50); JSMA and One-Pixel stay on the 8 images of the
cpu report. Staged and resumable like ``region-thesis`` (kind "paired", stages at 32, 64 and
100 images, records packed at every stage), and not part of ``reproduce all``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ...viz.document import Block
from ..machinery.results import Results
from ..machinery.spec import (
    EFFNET,
    LITE2,
    SCALES,
    DataSpec,
    Experiment,
    Part,
    Scale,
    cw_run,
    fcr_run,
    pgd_run,
    region_ddn_run,
    same_l2_runs,
)
from . import comparison, whitebox

IMAGES = 100
STAGES = (32, 64, 100)


def parts(s: Scale) -> list[Part]:
    cpu = SCALES["cpu"]  # the scale does not change this experiment
    first = [fcr_run(), pgd_run("PGD (Linf 16/255)"), cw_run(cpu, "C&W (L2)"), region_ddn_run(cpu)]
    same_l2 = [replace(run, phase=1) for run in same_l2_runs(cpu)]
    return [
        Part(
            DataSpec("imagenet", "data/imagenet-samples", 140, batch_size=8),
            [
                replace(EFFNET, size=224, max_images=IMAGES, stands_for="ResNet-34"),
                replace(LITE2, size=260, max_images=0),
            ],
            first + same_l2,
            STAGES,
        )
    ]


def section(res: Results, exp: str, figdir: Path) -> list[Block]:
    """Table 1's and Table 2's rows (the ``whitebox`` and ``comparison`` sections) on these
    records."""
    note = (
        "EfficientNet-Lite0 stands for Table 1's ResNet-34; Table 2's ImageNet model is not "
        "named by the paper. EfficientNet-Lite2 is not attacked: it only selects the images "
        "(those both networks classify correctly, as in region-thesis)."
    )
    return [
        Block("h3", "Table 1 rows (ImageNet)"),
        *whitebox.section(res, exp, figdir),
        Block("h3", "Table 2 rows (ImageNet)"),
        *comparison.section(res, exp, figdir),
        Block("p", note),
    ]


EXPERIMENT = Experiment(
    "whitebox-imagenet",
    "Tables 1 and 2 on 100 ImageNet photos (FCR, PGD, C&W, region DDN)",
    "Tables 1/2",
    "paired",
    parts,
    section,
    in_all=False,
)
