"""fcrattack: region-focused adversarial attacks (the FCR attack) on image classifiers.

>>> import fcrattack
>>> model = fcrattack.default_model()            # CIFAR-10 ResNet-20, takes [0, 1] images
>>> atk = fcrattack.FCR.paper(model, "cifar10")   # t=0.2, T=0.03, lr=10, steps=20, beta=1
>>> x_adv = atk(x, y)                             # (N, 3, 32, 32) in [0, 1]
>>> result = atk.run(x, y); result.summary()
>>> fcrattack.build("pgd", model, preset="paper")  # any attack by name

What needs the caller's attention (a model left in training mode, saved PNGs that are not
adversarial, ...) is a ``fcrattack.FcrattackWarning`` (``warnings.warn``); progress and
details go to the ``fcrattack`` loggers, silent unless configured.
"""

import logging

from . import _aliases
from ._version import __version__
from .attacks import (
    ATTACKS,
    CW,
    FCR,
    FGSM,
    JSMA,
    MIFGSM,
    PGD,
    PGDL2,
    Attack,
    AttackResult,
    Execution,
    MaskedFGSM,
    OnePixel,
    RegionDDN,
    build,
)
from .base.warn import FcrattackWarning
from .cam import fcr_mask, find_layer, gradcam
from .models import default_model, load_model

logging.getLogger(__name__).addHandler(logging.NullHandler())
_aliases.install()

__all__ = [
    "ATTACKS",
    "CW",
    "FCR",
    "FGSM",
    "JSMA",
    "MIFGSM",
    "PGD",
    "PGDL2",
    "Attack",
    "AttackResult",
    "Execution",
    "FcrattackWarning",
    "MaskedFGSM",
    "OnePixel",
    "RegionDDN",
    "__version__",
    "build",
    "default_model",
    "fcr_mask",
    "find_layer",
    "gradcam",
    "load_model",
]
