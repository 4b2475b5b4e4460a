"""Attacks: one file each over the shared template in ``base.py`` (gradient attacks over
``gradient.py``); ``ATTACKS`` maps CLI names to classes."""

from .base import Attack, AttackResult
from .cw import CW
from .ddn import RegionDDN
from .fcr import FCR
from .fgsm import FGSM
from .fgsm_masked import MaskedFGSM
from .gradient import GradientAttack
from .jsma import JSMA
from .mifgsm import MIFGSM
from .onepixel import OnePixel
from .pgd import PGD, PGDL2

ATTACKS: dict[str, type[Attack]] = {
    "fcr": FCR, "fcr-ddn": RegionDDN, "masked-fgsm": MaskedFGSM, "fgsm": FGSM, "pgd": PGD,
    "pgdl2": PGDL2, "mifgsm": MIFGSM, "cw": CW, "jsma": JSMA, "onepixel": OnePixel,
}

__all__ = ["ATTACKS", "CW", "FCR", "FGSM", "JSMA", "MIFGSM", "PGD", "PGDL2", "Attack",
           "AttackResult", "GradientAttack", "MaskedFGSM", "OnePixel", "RegionDDN"]
