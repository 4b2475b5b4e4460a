"""Attacks: one file each over the shared template in ``base.py``; ``ATTACKS`` maps CLI names
to classes."""

from .base import Attack, AttackResult
from .fcr import FCR
from .fgsm_masked import MaskedFGSM

ATTACKS: dict[str, type[Attack]] = {"fcr": FCR, "masked-fgsm": MaskedFGSM}

__all__ = ["ATTACKS", "FCR", "Attack", "AttackResult", "MaskedFGSM"]
