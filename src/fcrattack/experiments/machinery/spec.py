"""What an experiment is made of: models, data, attack runs, parts, the scale they run at, and
the ``Experiment`` registry entry that ties one module's config to its report section.

Two scales: ``paper`` (the paper's scale: 1,000 images and its hyper-parameters; meant for a
GPU) and ``cpu`` (shrunk so that all experiments together finish in about half an hour on a
2-core CPU). Paths of data and model files are relative to the shared root
(``fcrattack.data.shared_root``).

The paper's models (CIFAR-10 VGG-11/13/16, ResNet-18/34; ImageNet VGG-16/19, ResNet-34/50/101)
are not available here; each ``ModelSpec`` names the real model used and the paper model
it stands for, and every table prints both.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...regions import SOURCES

if TYPE_CHECKING:
    from ...viz.document import Block
    from .results import Results

#: 3: one name per thing (region DDN's run keys, ``scale`` for the run scale); 4: region DDN's
#: defaults (FMN's radius rule, margin then cross-entropy); 5: a record names its attack by
#: its registry name (``attack``, as ``AttackSetting.attack``) and its setting by
#: ``attack_key`` (``AttackSetting.key``); version 4 wrote these as ``attack_class`` and
#: ``attack``. Folders of a version not in ``READABLE`` are refused rather than mixed.
VERSION = 5
#: config versions whose records ``upgrade`` reads (and whose folders resume)
READABLE = (4, 5)


def upgrade(record: dict[str, Any]) -> dict[str, Any]:
    """A record in the current form (``VERSION``), from any version of ``READABLE``."""
    if "attack_key" not in record:  # version 4
        record = dict(record)
        record["attack_key"] = record["attack"]
        if "attack_class" in record:  # an attack's record (not one of fcr-importance)
            record["attack"] = record.pop("attack_class")
    return record


@dataclass
class ModelSpec:
    """A model: ``source`` is ``default``, ``efficientnet-lite0`` or a checkpoint path relative
    to the shared root (a glob such as ``resnet20-*.th`` is allowed); ``stands_for`` names the
    paper's model it substitutes for. ``size``: the model's own input size (ImageNet: images
    are read at it, resized by 256/224 of it and centre-cropped; None: the part's size);
    ``max_images``: at most this many of the part's eligible images are attacked on it
    (kind "paired"; 0: none, the model only decides which images are eligible)."""

    name: str
    source: str
    label: str
    stands_for: str
    arch: str | None = None
    size: int | None = None
    max_images: int | None = None


@dataclass
class DataSpec:
    """Images: ``dataset`` "cifar10" (``root``: pickle or JPEG folders) or "imagenet"
    (validation-style folders); a seeded subset of ``n``."""

    dataset: str
    root: str
    n: int
    seed: int = 0
    split: str = "test"
    batch_size: int = 100


@dataclass
class AttackSetting:
    """One attack setting of an experiment. ``key`` names it (in record keys and as a record's
    ``attack_key``); ``attack`` is an ``ATTACKS`` name
    built with the paper's settings for the part's data set, updated by ``params``;
    ``budget_from`` (a key of an earlier run) makes ``eps`` the per-image L2 that run reached;
    ``mask_t`` restricts the attack to a region of the attacked model's FCR area at threshold
    ``mask_t`` (Grad-CAM of the true class >= ``mask_t``), passed to ``run(mask=)``: the FCR
    itself, or with ``mask_source`` another source of ``fcrattack.regions.SOURCES`` with
    the same per-image area; ``paper_row`` is the row of the paper's table it reproduces.
    Staged experiments (kind "paired"): ``first`` attacks only the first that many eligible
    images, ``phase`` orders the runs (all of phase 0 before phase 1, ...), and
    ``budget_rule`` "median" makes ``eps`` the median L2 of ``budget_from`` over the images
    it fooled (one budget per model) instead of each image's own."""

    key: str
    attack: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    budget_from: str | None = None
    mask_t: float | None = None
    paper_row: str | None = None
    mask_source: str = "fcr"
    first: int | None = None
    phase: int = 0
    budget_rule: str = "per-image"

    def __post_init__(self) -> None:
        if self.mask_source not in SOURCES:
            raise ValueError(f"{self.key}: unknown mask_source {self.mask_source!r}")
        if self.mask_source != "fcr" and self.mask_t is None:
            raise ValueError(f"{self.key}: mask_source needs mask_t (the area's threshold)")
        if self.budget_rule not in ("per-image", "median"):
            raise ValueError(f"{self.key}: budget_rule must be 'per-image' or 'median'")

    def setting(self) -> str:
        """Canonical text of the settings (part of every record key)."""
        items = sorted(self.params.items())
        if self.budget_from:
            rule = "" if self.budget_rule == "per-image" else "median "
            items.append(("eps", f"{rule}l2({self.budget_from})"))
        if self.mask_t is not None:
            region = f"t={self.mask_t}"
            if self.mask_source != "fcr":
                region = f"{self.mask_source}, area of fcr {region}"
            items.append(("mask", f"fcr({region})"))
        return ",".join(f"{k}={v}" for k, v in items) or "default"


#: the old name of ``AttackSetting``
AttackRun = AttackSetting


@dataclass
class Part:
    """The experiment on one data set: models, data and attack runs. The first model is the
    white-box target of single-model experiments. ``stages`` (kind "paired"): cumulative image
    counts at which a phase's work is cut into stages (e.g. (32, 64, 100): the first 32 images
    of every run of the phase, then the next 32, ...), so that an interrupted run leaves
    complete pairs on the first images."""

    data: DataSpec
    models: list[ModelSpec]
    runs: list[AttackSetting]
    stages: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.data.dataset


@dataclass
class ExperimentConfig:
    """A paper table or figure at one scale: ``kind`` is "importance", "attack" (white-box,
    per model and run), "transfer" (craft on each source, evaluate on every model) or "visual"
    (panels) or "paired" (staged, image-major: every run of a phase on the same images, the
    regions of one image batched together)."""

    name: str
    version: int
    title: str
    paper_ref: str
    kind: str
    scale: str
    parts: list[Part]
    seed: int = 0
    t: float = 0.2
    panel_images: int = 0
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, kw_only=True)
class Scale:
    """What a scale changes: image counts (``n_beyond``: the experiments beyond the paper),
    batch sizes, C&W and region DDN steps, One-Pixel's budget, and the JSMA options on 224-px
    ImageNet images (``jsma_imagenet``; the cpu scale caps its iterations). ``controls``:
    images and region DDN steps of the region controls per data set, ``{name: (n, steps)}``."""

    n_cifar: int
    n_imagenet: int
    batch_cifar: int
    batch_imagenet: int
    cw_steps: int
    ddn_steps: int
    jsma_imagenet: dict[str, Any]
    onepixel: dict[str, Any]
    n_visual: int
    n_beyond: int
    controls: dict[str, tuple[int, int]]


SCALES = {
    "paper": Scale(
        n_cifar=1000,
        n_imagenet=1000,
        batch_cifar=250,
        batch_imagenet=25,
        cw_steps=1000,
        ddn_steps=100,
        jsma_imagenet={},
        onepixel={},
        n_visual=4,
        n_beyond=1000,
        controls={"cifar10": (1000, 100), "imagenet": (200, 100)},
    ),
    "cpu": Scale(
        n_cifar=100,
        n_imagenet=8,
        batch_cifar=100,
        batch_imagenet=8,
        cw_steps=100,
        ddn_steps=50,
        jsma_imagenet={"steps": 200},
        onepixel={"popsize": 50, "steps": 20},
        n_visual=3,
        n_beyond=80,
        controls={"cifar10": (64, 100), "imagenet": (4, 20)},
    ),
}

Section = Callable[["Results", str, Path], list["Block"]]


@dataclass(frozen=True)
class Experiment:
    """One experiment: its config at any scale (``parts``) and its report section, defined
    together in one module of this package; ``in_all``: part of ``reproduce all``."""

    name: str
    title: str
    paper_ref: str
    kind: str
    parts: Callable[[Scale], list[Part]]
    section: Section
    notes: str = ""
    in_all: bool = True

    def config(self, scale: str = "cpu", *, n: int | None = None) -> ExperimentConfig:
        """The config at ``scale``; ``n`` overrides the number of images of every part."""
        if scale not in SCALES:
            raise ValueError(f"unknown scale {scale!r}; choose one of {list(SCALES)}")
        s = SCALES[scale]
        parts = self.parts(s)
        if n is not None:
            if n < 1:
                raise ValueError(f"n must be positive, got {n}")
            for part in parts:
                part.data.n = n
                part.data.batch_size = min(part.data.batch_size, n)
        return ExperimentConfig(
            self.name,
            VERSION,
            self.title,
            self.paper_ref,
            self.kind,
            scale,
            parts,
            panel_images=s.n_visual if self.kind == "visual" else 0,
            notes=self.notes,
        )


# --- the models available here, and shared building blocks --------------------------------
AKA = "models/cifar10-resnet-akamaster"
R20 = ModelSpec(
    "resnet20-akamaster", f"{AKA}/resnet20-*.th", "ResNet-20 (akamaster)", "ResNet-18", "resnet20"
)
R32 = ModelSpec(
    "resnet32-akamaster", f"{AKA}/resnet32-*.th", "ResNet-32 (akamaster)", "ResNet-34", "resnet32"
)
EFFNET = ModelSpec("efficientnet-lite0", "efficientnet-lite0", "EfficientNet-Lite0", "VGG-19")
LITE1 = ModelSpec("efficientnet-lite1", "efficientnet-lite1", "EfficientNet-Lite1", "ResNet-50")
LITE2 = ModelSpec("efficientnet-lite2", "efficientnet-lite2", "EfficientNet-Lite2", "ResNet-101")
VGG11 = ModelSpec("vgg11-cifar10", "vgg11-cifar10", "VGG-11 (trained by fcrattack)", "VGG-11")


#: ``stands_for`` of a model standing in for one the paper does not name
UNNAMED = "unknown (not stated)"


def stand_in(model: ModelSpec, stands_for: str) -> ModelSpec:
    """``model`` standing in for the paper's ``stands_for``."""
    return dataclasses.replace(model, stands_for=stands_for)


def cifar(s: Scale, n: int | None = None) -> DataSpec:
    """The JPEG CIFAR-10 test split at scale ``s`` (or ``n`` images)."""
    return DataSpec("cifar10", "data/cifar10-jpeg", n or s.n_cifar, batch_size=s.batch_cifar)


def imagenet(s: Scale, n: int | None = None) -> DataSpec:
    """The ImageNet samples at scale ``s`` (or ``n`` images)."""
    return DataSpec(
        "imagenet", "data/imagenet-samples", n or s.n_imagenet, batch_size=s.batch_imagenet
    )


def fcr_run(key: str = "fcr", label: str = "FCR", **params: Any) -> AttackSetting:
    """The FCR attack at the paper's settings updated by ``params``."""
    return AttackSetting(key, "fcr", label, dict(params), paper_row="FCR")


def region_ddn_run(s: Scale) -> AttackSetting:
    """Region DDN at t = 0.2 with the scale's steps."""
    return AttackSetting(
        "region-ddn",
        "region-ddn",
        "region DDN (fcrattack's region attack; extra)",
        {"steps": s.ddn_steps},
    )


def cw_run(s: Scale, label: str = "C&W") -> AttackSetting:
    """C&W at the paper's settings with the scale's steps."""
    return AttackSetting("cw", "cw", label, {"steps": s.cw_steps}, paper_row="C&W")


def pgd_run(label: str = "PGD") -> AttackSetting:
    """PGD at the paper's settings."""
    return AttackSetting("pgd", "pgd", label, paper_row="PGD")


def same_l2_runs(s: Scale) -> list[AttackSetting]:
    """PGD-L2 and C&W with the per-image L2 budget FCR reached (the paper's same-L2 rows)."""
    return [
        AttackSetting(
            "pgdl2-at-fcr-l2",
            "pgdl2",
            "PGD-L2 at FCR's per-image L2",
            {"steps": 20},
            budget_from="fcr",
            paper_row="PGD",
        ),
        AttackSetting(
            "cw-at-fcr-l2",
            "cw",
            "C&W at FCR's per-image L2",
            {"steps": s.cw_steps},
            budget_from="fcr",
            paper_row="C&W",
        ),
    ]
