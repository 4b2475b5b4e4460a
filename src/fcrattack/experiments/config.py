"""Named, versioned experiment configs: one per table or figure of the FCR paper, and two
beyond it (``region-tradeoff``: fcr-ddn's L2/L0 trade-off across thresholds t against C&W;
``transfer-equal-l2``: FCR-restricted vs unrestricted PGD-L2 transfer at equal L2 budgets).

Each config names its models, data (n images, sampling seed), attack runs and their settings,
in two presets: ``paper`` (the paper's scale: 1,000 images and its hyper-parameters; meant for
a GPU) and ``cpu`` (shrunk so that all experiments together finish in about half an hour on
a 2-core CPU). Paths of data and model files are relative to the shared root (see
:func:`fcrattack.experiments.runner.shared_root`).

The paper's models (CIFAR-10 VGG-11/13/16, ResNet-18/34; ImageNet VGG-16/19, ResNet-34/50/101)
are not available here; each :class:`ModelSpec` names the real model used and the paper model
it stands for, and every table prints both.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

PRESETS = ("paper", "cpu")
EXPERIMENTS = ("fcr-importance", "whitebox", "comparison", "masked-fgsm", "transfer",
               "sweep-steps-temperature", "sweep-threshold", "visual", "region-tradeoff",
               "transfer-equal-l2")
#: attacks that other parts of the project provide; a config run using one is skipped with a
#: note when it is not registered in ``fcrattack.attacks.ATTACKS``
OPTIONAL_ATTACKS = ("jsma", "onepixel", "fcr-ddn")


@dataclass
class ModelSpec:
    """A model: ``source`` is ``default``, ``efficientnet-lite0`` or a checkpoint path relative
    to the shared root (a glob such as ``resnet20-*.th`` is allowed); ``stands_for`` names the
    paper's model it substitutes for."""

    name: str
    source: str
    label: str
    stands_for: str
    arch: str | None = None


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
class AttackRun:
    """One attack setting. ``key`` names it in record keys; ``attack`` is an ``ATTACKS`` name
    built with its class's ``paper(model, dataset)`` preset when it has one, updated by
    ``params``; ``budget_from`` (a key of an earlier run) makes ``eps`` the per-image L2 that
    run reached; ``mask_t`` restricts the attack to the attacked model's FCR mask (Grad-CAM of
    the true class >= ``mask_t``, passed to ``run(mask=)``); ``paper_row`` is the row of the
    paper's table it reproduces."""

    key: str
    attack: str
    label: str
    params: dict[str, Any] = field(default_factory=dict)
    budget_from: str | None = None
    mask_t: float | None = None
    paper_row: str | None = None
    optional: bool = False

    def setting(self) -> str:
        """Canonical text of the settings (part of every record key)."""
        items = sorted(self.params.items())
        if self.budget_from:
            items.append(("eps", f"l2({self.budget_from})"))
        if self.mask_t is not None:
            items.append(("mask", f"fcr(t={self.mask_t})"))
        return ",".join(f"{k}={v}" for k, v in items) or "default"


@dataclass
class Part:
    """The experiment on one data set: models, data and attack runs. The first model is the
    white-box target of single-model experiments."""

    data: DataSpec
    models: list[ModelSpec]
    runs: list[AttackRun]

    @property
    def name(self) -> str:
        return self.data.dataset


@dataclass
class ExperimentConfig:
    """A paper table or figure: ``kind`` is "importance", "attack" (white-box, per model and
    run), "transfer" (craft on each source, evaluate on every model) or "visual" (panels)."""

    name: str
    version: int
    title: str
    paper_ref: str
    kind: str
    preset: str
    parts: list[Part]
    seed: int = 0
    t: float = 0.2
    panel_images: int = 0
    notes: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --- the models available here -----------------------------------------------------------
AKA = "models/cifar10-resnet-akamaster"
R20 = ModelSpec("resnet20-akamaster", f"{AKA}/resnet20-*.th", "ResNet-20 (akamaster)",
                "ResNet-18", "resnet20")
R32 = ModelSpec("resnet32-akamaster", f"{AKA}/resnet32-*.th", "ResNet-32 (akamaster)",
                "ResNet-34", "resnet32")
DEFAULT = ModelSpec("default", "default", "ResNet-20 (fcrattack default, JPEG-trained)",
                    "VGG-11")
EFFNET = ModelSpec("efficientnet-lite0", "efficientnet-lite0", "EfficientNet-Lite0",
                   "VGG-19")


def _as(model: ModelSpec, stands_for: str) -> ModelSpec:
    return dataclasses.replace(model, stands_for=stands_for)


@dataclass(frozen=True)
class Scale:
    """What a preset changes: image counts (``n_beyond``: the two experiments beyond the
    paper), batch sizes, C&W and fcr-ddn steps, One-Pixel's budget, and the JSMA options on
    224-px ImageNet images (``jsma_imagenet``; the cpu preset caps its iterations)."""

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


SCALES = {
    "paper": Scale(1000, 1000, 250, 25, 1000, 100, {}, {}, 4, 1000),
    "cpu": Scale(100, 8, 100, 8, 100, 50, {"steps": 200}, {"popsize": 50, "steps": 20}, 3, 80),
}


def _cifar(s: Scale, n: int | None = None) -> DataSpec:
    return DataSpec("cifar10", "data/cifar10-jpeg", n or s.n_cifar, batch_size=s.batch_cifar)


def _imagenet(s: Scale, n: int | None = None) -> DataSpec:
    return DataSpec("imagenet", "data/imagenet-samples", n or s.n_imagenet,
                    batch_size=s.batch_imagenet)


def _fcr(key: str = "fcr", label: str = "FCR", **params: Any) -> AttackRun:
    return AttackRun(key, "fcr", label, dict(params), paper_row="FCR")


def _ddn(s: Scale) -> AttackRun:
    return AttackRun("fcr-ddn", "fcr-ddn", "FCR-DDN (fcrattack's region attack; extra)",
                     {"steps": s.ddn_steps}, optional=True)


def _same_l2(s: Scale) -> list[AttackRun]:
    return [AttackRun("pgdl2-at-fcr-l2", "pgdl2", "PGD-L2 at FCR's per-image L2", {"steps": 20},
                      budget_from="fcr", paper_row="PGD"),
            AttackRun("cw-at-fcr-l2", "cw", "C&W at FCR's per-image L2",
                      {"steps": s.cw_steps}, budget_from="fcr", paper_row="C&W")]


def _importance(s: Scale) -> list[Part]:
    return [Part(_cifar(s), [R20, R32, DEFAULT], [])]


def _whitebox(s: Scale) -> list[Part]:
    runs = [_fcr(), *_same_l2(s), _ddn(s)]
    return [Part(_cifar(s), [_as(DEFAULT, "VGG-11"), R20], runs),
            Part(_imagenet(s), [_as(EFFNET, "ResNet-34")], runs)]


def _comparison(s: Scale) -> list[Part]:
    base = [AttackRun("pgd", "pgd", "PGD (Linf 16/255)", paper_row="PGD"),
            AttackRun("cw", "cw", "C&W (L2)", {"steps": s.cw_steps}, paper_row="C&W")]
    tail = [_fcr(), *_same_l2(s), _ddn(s)]
    return [Part(_cifar(s), [R20], base + _l0_runs(s, {}) + tail),
            Part(_imagenet(s), [_as(EFFNET, "unknown (not stated)")],
                 base + _l0_runs(s, s.jsma_imagenet) + tail)]


def _l0_runs(s: Scale, jsma: dict[str, Any]) -> list[AttackRun]:
    """JSMA (options ``jsma``; a capped iteration count shows in the label) and One-Pixel."""
    label = f"JSMA (<= {jsma['steps']} iterations)" if "steps" in jsma else "JSMA"
    return [AttackRun("jsma", "jsma", label, dict(jsma), paper_row="JSMA", optional=True),
            AttackRun("onepixel", "onepixel", "One-Pixel (5 px)", dict(s.onepixel),
                      paper_row="One-pixel", optional=True)]


MASKED_GRID = ((0.03, 0.0), (0.03, 0.01), (0.03, 0.03), (0.03, 0.05), (0.05, 0.0),
               (0.05, 0.03), (0.05, 0.05), (0.08, 0.05))


def _masked(s: Scale) -> list[Part]:
    runs = [AttackRun(f"masked-fgsm-{e1:.2f}-{e2:.2f}", "masked-fgsm",
                      f"masked FGSM eps1={e1:.2f} eps2={e2:.2f}", {"eps1": e1, "eps2": e2})
            for e1, e2 in MASKED_GRID]
    return [Part(_cifar(s), [_as(DEFAULT, "VGG-11"), R20], runs)]


def _transfer(s: Scale) -> list[Part]:
    runs = [AttackRun("pgd", "pgd", "PGD", paper_row="PGD"),
            AttackRun("mifgsm", "mifgsm", "M-DI2-FGSM", paper_row="M-DI2-FGSM"),
            AttackRun("cw", "cw", "C&W", {"steps": s.cw_steps}, paper_row="C&W"),
            _fcr(), _ddn(s)]
    return [Part(_cifar(s), [_as(DEFAULT, "VGG-11"), R20, R32], runs)]


STEPS = (1, 2, 5, 10, 20, 30)
TEMPERATURES = (0.01, 0.02, 0.03, 0.05, 0.1, 0.2)
THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)


def _sweep_steps(s: Scale) -> list[Part]:
    parts = []
    for data, model, t_default in ((_cifar(s), R20, 0.03),
                                   (_imagenet(s), _as(EFFNET, "VGG-16"), 0.05)):
        runs = [_fcr(f"fcr-steps-{n}", f"FCR N={n}", steps=n, T=t_default) for n in STEPS]
        runs += [_fcr(f"fcr-T-{t}", f"FCR T={t}", steps=20, T=t) for t in TEMPERATURES]
        parts.append(Part(data, [model], runs))
    return parts


def _sweep_threshold(s: Scale) -> list[Part]:
    runs = [_fcr(f"fcr-t-{t:.1f}", f"FCR t={t:.1f}", t=t) for t in THRESHOLDS]
    return [Part(_cifar(s), [R20], runs), Part(_imagenet(s), [_as(EFFNET, "VGG-16")], runs)]


def _visual(s: Scale) -> list[Part]:
    runs = [AttackRun("pgd", "pgd", "PGD", paper_row="PGD"),
            AttackRun("cw", "cw", "C&W", {"steps": s.cw_steps}, paper_row="C&W"), _fcr()]
    return [Part(_cifar(s, 4 * s.n_visual), [R20], runs),
            Part(_imagenet(s, 2 * s.n_visual), [_as(EFFNET, "ResNet-50")], runs)]


TRADEOFF_THRESHOLDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8)
#: C&W at the paper's settings in both presets (c = 1, lr = 0.01, 1,000 steps)
PAPER_CW_STEPS = 1000


def _region_tradeoff(s: Scale) -> list[Part]:
    runs = [AttackRun("cw", "cw", "C&W (c=1, lr=0.01, 1000 steps)",
                      {"steps": PAPER_CW_STEPS}, paper_row="C&W")]
    runs += [AttackRun(f"fcr-ddn-t-{t:.1f}", "fcr-ddn", f"fcr-ddn t={t:.1f}",
                       {"steps": s.ddn_steps, "t": t}) for t in TRADEOFF_THRESHOLDS]
    return [Part(_cifar(s, s.n_beyond), [R20, R32], runs)]


EQUAL_L2_BUDGETS = (0.25, 0.5, 1.0)


def _transfer_equal_l2(s: Scale) -> list[Part]:
    runs = []
    for eps in EQUAL_L2_BUDGETS:
        runs += [AttackRun(f"pgdl2-fcr-{eps}", "pgdl2", f"PGD-L2 eps={eps} in the FCR (t=0.2)",
                           {"eps": eps, "steps": 20}, mask_t=0.2),
                 AttackRun(f"pgdl2-full-{eps}", "pgdl2", f"PGD-L2 eps={eps} unrestricted",
                           {"eps": eps, "steps": 20})]
    runs += [AttackRun(f"fcr-ddn-t-{t}", "fcr-ddn", f"fcr-ddn t={t}",
                       {"steps": s.ddn_steps, "t": t}) for t in (0.2, 0.0)]
    return [Part(_cifar(s, s.n_beyond), [_as(DEFAULT, "VGG-11"), R20, R32], runs)]


_BUILDERS = {
    "fcr-importance": ("Importance of the FCRs (accuracy on FCR-only / non-FCR-only inputs)",
                       "Fig. 2", "importance", _importance),
    "whitebox": ("White-box FCR attack (clean accuracy, ASR; same-L2 PGD and C&W)", "Table 1",
                 "attack", _whitebox),
    "comparison": ("White-box comparison with PGD, C&W, JSMA, One-Pixel", "Table 2", "attack",
                   _comparison),
    "masked-fgsm": ("Masked FGSM: eps1 on the FCRs, eps2 elsewhere", "Table 3", "attack",
                    _masked),
    "transfer": ("Transferability (source x target ASR)", "Tables 4/5", "transfer", _transfer),
    "sweep-steps-temperature": ("FCR ASR vs steps N and inverse temperature T", "Fig. 4",
                                "attack", _sweep_steps),
    "sweep-threshold": ("FCR ASR and L0 vs threshold t", "Fig. 5", "attack", _sweep_threshold),
    "visual": ("Heat-map, FCR, perturbations and adversarial examples", "Figs. 1/3", "visual",
               _visual),
    "region-tradeoff": ("fcr-ddn across FCR thresholds t against C&W (L2 and L0 trade-off)",
                        "Beyond the paper", "attack", _region_tradeoff),
    "transfer-equal-l2": ("Do FCR-restricted perturbations transfer better at equal L2?",
                          "Beyond the paper", "transfer", _transfer_equal_l2),
}

#: 2: fcr-ddn's initial radius search, One-Pixel's best1 default, and JSMA / One-Pixel on the
#: ImageNet side of ``comparison`` in the cpu preset too (v1 skipped them there)
VERSION = 2
NOTES = {
    "transfer": "ImageNet transfer (Table 5) needs several ImageNet models; only "
                "EfficientNet-Lite0 is available here, so only the CIFAR-10 matrix is run.",
    "comparison": "The paper does not name its ImageNet model. The cpu preset stops JSMA on "
                  "224-px images after 200 iterations (at most 400 changed values).",
    "region-tradeoff": "C&W runs at the paper's settings (1,000 steps, abort-early) in both "
                       "presets; fcr-ddn uses the preset's step count at every t.",
    "transfer-equal-l2": "PGD-L2 uses 20 steps and step size 2.5 eps / 20 (random start), "
                         "restricted to the source model's FCR mask (t = 0.2, Grad-CAM of the "
                         "true class) or not; fcr-ddn rows are minimum-norm, so their L2 "
                         "differ.",
}


def get_config(name: str, preset: str = "cpu", *, n: int | None = None) -> ExperimentConfig:
    """The config ``name`` (one of :data:`EXPERIMENTS`) at ``preset``; ``n`` overrides the
    number of images of every part."""
    if name not in _BUILDERS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {list(EXPERIMENTS)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    title, ref, kind, build = _BUILDERS[name]
    parts = build(SCALES[preset])
    if n is not None:
        if n < 1:
            raise ValueError(f"n must be positive, got {n}")
        for part in parts:
            part.data.n = n
            part.data.batch_size = min(part.data.batch_size, n)
    return ExperimentConfig(name, VERSION, title, ref, kind, preset, parts,
                            panel_images=SCALES[preset].n_visual if kind == "visual" else 0,
                            notes=NOTES.get(name, ""))
