"""Attacks: one file each over the shared template in ``base.py`` (gradient attacks over
``gradient.py``); ``build.py`` holds the one factory (``ATTACKS``, ``build``)."""

from .base import Attack, BatchContext
from .build import (
    ALIASES,
    ATTACKS,
    DEFAULT_ATTACK,
    attack_class,
    build,
    describe,
    parse_options,
    summary,
    uses_cam,
)
from .cw import CW
from .execution import Execution
from .fcr import FCR
from .fgsm import FGSM
from .gradient import GradientAttack
from .grid import GridMixin, supports_grid, to_grid
from .jsma import JSMA
from .masked_fgsm import MaskedFGSM
from .mifgsm import MIFGSM
from .onepixel import OnePixel
from .pgd import PGD, PGDL2
from .region_ddn import RegionDDN
from .result import AttackResult, BestIterate

__all__ = [
    "ALIASES",
    "ATTACKS",
    "CW",
    "DEFAULT_ATTACK",
    "FCR",
    "FGSM",
    "JSMA",
    "MIFGSM",
    "PGD",
    "PGDL2",
    "Attack",
    "AttackResult",
    "BatchContext",
    "BestIterate",
    "Execution",
    "GradientAttack",
    "GridMixin",
    "MaskedFGSM",
    "OnePixel",
    "RegionDDN",
    "attack_class",
    "build",
    "describe",
    "parse_options",
    "summary",
    "supports_grid",
    "to_grid",
    "uses_cam",
]
