"""VGG-11/13/16/19 for 32x32 CIFAR inputs (with BatchNorm), as used by the FCR paper.

``features`` ends with a max-pool (the "VGG trap" for Grad-CAM): the last convolution's
activation is ``features[-2]`` (the ReLU after the last conv+BN, ``cam_layer_name``);
``fcrattack.cam`` picks it.
Input: normalised (N, 3, 32, 32); output: logits (N, num_classes).
"""

from __future__ import annotations

import torch
from torch import nn

# fmt: off
VGG_CONFIGS: dict[str, list[int | str]] = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
              512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
# fmt: on


def cam_layer_name(name: str) -> str:
    """Module name (inside the bare network) of the last convolution's ReLU, e.g. ``features.27``
    for VGG-11: the Grad-CAM layer (the last max-pool's output is 1 x 1)."""
    if name not in VGG_CONFIGS:
        raise ValueError(f"unknown VGG {name!r}; choose one of {sorted(VGG_CONFIGS)}")
    n_layers = sum(1 if v == "M" else 3 for v in VGG_CONFIGS[name])
    return f"features.{n_layers - 2}"


class CifarVGG(nn.Module):
    def __init__(self, name: str, num_classes: int = 10) -> None:
        super().__init__()
        if name not in VGG_CONFIGS:
            raise ValueError(f"unknown VGG {name!r}; choose one of {sorted(VGG_CONFIGS)}")
        layers: list[nn.Module] = []
        channels = 3
        for v in VGG_CONFIGS[name]:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [
                    nn.Conv2d(channels, int(v), 3, padding=1),
                    nn.BatchNorm2d(int(v)),
                    nn.ReLU(inplace=False),
                ]
                channels = int(v)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))
