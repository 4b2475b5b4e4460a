"""What a loaded model says about itself: ``ModelInfo``, carried as ``model.info``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from ..base.validation import read_json, read_text
from ..data import CIFAR10_CLASSES


@cache
def imagenet_classes() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """ImageNet-1k's (WordNet ids, names), in the standard class order (index 0 = n01440764,
    tench); bundled with the package."""
    ref = resources.files("fcrattack") / "models" / "imagenet_classes.json"
    pairs = json.loads(ref.read_text(encoding="utf-8"))
    return tuple(w for w, _ in pairs), tuple(n for _, n in pairs)


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of a loaded model, used by data loading, Grad-CAM and reports.

    Attributes:
        source: the spec the model was loaded from (e.g. ``"torchvision:resnet18"``).
        input_size: side in pixels of the square images the model was trained on (None: any
            size; then images are not resized unless asked).
        resize_size: the shorter side images are resized to before the centre crop of
            ``input_size`` (None: equal to ``input_size``, i.e. resize then crop the middle).
        classes: class names in label order (None: unknown; class folders are then labelled
            by sorted folder order and label files must hold indices).
        wnids: WordNet ids in label order for ImageNet-1k models (folders may be named by them).
        cam_layer: the Grad-CAM layer (None: the automatic choice of ``fcrattack.gradcam``).
        dataset: ``"cifar10"`` or ``"imagenet"`` when the model's label space is one of them
            (it selects the paper's settings for ``--preset paper``), else None.
    """

    source: str
    input_size: int | None = None
    resize_size: int | None = None
    classes: tuple[str, ...] | None = None
    wnids: tuple[str, ...] | None = None
    cam_layer: str | None = None
    dataset: str | None = None

    @classmethod
    def cifar10(cls, source: str, cam_layer: str | None = None) -> ModelInfo:
        """A CIFAR-10 model: 32 px, CIFAR-10's ten classes."""
        return cls(source, 32, 32, tuple(CIFAR10_CLASSES), None, cam_layer, "cifar10")

    @classmethod
    def imagenet(
        cls, source: str, input_size: int, resize_size: int, cam_layer: str | None = None
    ) -> ModelInfo:
        """An ImageNet-1k model with the standard class order."""
        wnids, names = imagenet_classes()
        return cls(source, input_size, resize_size, names, wnids, cam_layer, "imagenet")


def class_names(classes: str | Sequence[str]) -> tuple[str, ...]:
    """Class names from ``read_class_names``'s specs, or a sequence of names; none, or
    anything but non-empty strings, is refused."""
    if isinstance(classes, str):
        names = read_class_names(classes)
    elif isinstance(classes, Sequence):
        names = tuple(classes)
    else:
        raise ValueError(f"classes must be names or a spec, got {type(classes).__name__}")
    if not names:
        raise ValueError(f"classes: {classes!r} gives no class names")
    bad = [n for n in names if not isinstance(n, str) or not n.strip()]
    if bad:
        raise ValueError(f"classes must be non-empty strings, got {bad[0]!r}")
    return names


def read_class_names(spec: str) -> tuple[str, ...]:
    """Class names from ``"cifar10"``, ``"imagenet"`` or a file: a JSON list of names, or a
    text file with one name per line."""
    if spec == "cifar10":
        return tuple(CIFAR10_CLASSES)
    if spec == "imagenet":
        return imagenet_classes()[1]
    path = Path(spec)
    if not path.is_file():
        raise FileNotFoundError(
            f"class names: {spec!r} is not 'cifar10', 'imagenet' or an existing file"
        )
    text = read_text(path, "class-name file")
    if path.suffix.lower() == ".json":
        names = read_json(text, path, "class-name file")
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise ValueError(f"{path}: expected a JSON list of class names")
        return tuple(names)
    return tuple(line.strip() for line in text.splitlines() if line.strip())
