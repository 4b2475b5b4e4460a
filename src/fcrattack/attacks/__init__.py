"""Attacks: one file each over the shared template in ``base.py``."""

from .base import Attack, AttackResult
from .fcr import FCR
from .fgsm_masked import MaskedFGSM

__all__ = ["FCR", "Attack", "AttackResult", "MaskedFGSM"]
