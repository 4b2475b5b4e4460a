"""The regions of the runs restricted to a region (``AttackSetting.mask_t``): computed once per
(part, model) over the part's eligible images, so that a shuffled source pairs the same images
on resume, and the shuffled pairs' check against the records already written."""

from __future__ import annotations

import torch
from torch import nn

from ...base.store import ResultStore
from ...data import Dataset
from ...regions import EqualAreaRegions, shuffle_partners
from .spec import AttackSetting, Part

#: the report label of each region source
LABELS = {
    "fcr": "FCR (own Grad-CAM)",
    "lowest-cam": "lowest Grad-CAM pixels",
    "shuffled-fcr": "another image's FCR",
    "centred-disc": "centred disc",
    "random-disc": "random disc",
    "random-pixels": "random pixels",
    "gradcam++": "Grad-CAM++",
    "xgradcam": "XGrad-CAM",
    "layercam": "LayerCAM",
    "smoothgrad": "SmoothGrad saliency",
}


class PartRegions:
    """The ``EqualAreaRegions`` of each model for the current part
    (``clear`` when the part ends). ``seed`` seeds the random sources, ``device`` computes."""

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed, self.device = seed, device
        self._regions: dict[str, EqualAreaRegions] = {}

    def clear(self) -> None:
        self._regions.clear()

    def masks(
        self, part: Part, name: str, model: nn.Module, run: AttackSetting, data: Dataset
    ) -> torch.Tensor | None:
        """The masks (N, 1, H, W) of ``run``'s region for every image of ``data`` (the part's
        eligible images), or None for an unrestricted run."""
        if run.mask_t is None:
            return None
        if name not in self._regions:
            self._regions[name] = EqualAreaRegions(
                model,
                data.images,
                data.labels,
                ids=data.ids,
                seed=self.seed,
                batch_size=part.data.batch_size,
                device=self.device,
            )
        return self._regions[name].mask(run.mask_source, run.mask_t)


def partners(data: Dataset) -> dict[str, str]:
    """image id -> the id of the image whose Grad-CAM its shuffled region borrows."""
    return {data.ids[i]: data.ids[j] for i, j in enumerate(shuffle_partners(len(data)))}


def check_partners(
    store: ResultStore, experiment: str, part: str, model: str, run: AttackSetting, data: Dataset
) -> None:
    """Refuse to resume ``shuffled-fcr`` records made with other image pairs (the pairing
    depends on the set of eligible images, which the record keys do not name)."""
    if run.mask_source != "shuffled-fcr":
        return
    partner = partners(data)
    for r in store.select(experiment=experiment, part=part, model=model, attack_key=run.key):
        if r["id"] in partner and r.get("mask_partner") != partner[r["id"]]:
            raise ValueError(
                f"{store.dir}: {run.key} records of {model} pair image {r['id']} with "
                f"{r.get('mask_partner')}, this run with {partner[r['id']]}: the eligible "
                "images changed (another n or model list). Choose another output folder"
            )
