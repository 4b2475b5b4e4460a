"""CIFAR-10 VGG weights trained by ``fcrattack train``, stored in fp16 (see README.md).

``fcrattack.load_model("vgg11-cifar10")`` reads them; :data:`WEIGHTS` maps each model name to
its file and sha256.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: model name -> (file in this package, sha256 of the file)
WEIGHTS = {
    "vgg11-cifar10": (
        "vgg11_cifar10jpeg.pt",
        "6724e69b9e7b5cb43e3d431bb4417b722ac60b155d4837ea8716715d73849f55",
    ),
}


def path(name: str) -> Path:
    """The file of model ``name`` (a key of :data:`WEIGHTS`), installed with this package."""
    if name not in WEIGHTS:
        raise KeyError(f"no weights named {name!r}; this package has {sorted(WEIGHTS)}")
    return Path(str(resources.files(__name__) / WEIGHTS[name][0]))
