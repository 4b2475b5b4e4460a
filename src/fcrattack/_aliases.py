"""Import paths of modules that moved, kept working: ``import fcrattack.store`` gives the module
``fcrattack.base.store`` itself (the same object, so patches and ``isinstance`` checks hold).
A path is resolved only when imported: nothing here imports the new modules up front."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

_EXP = "fcrattack.experiments"
#: old path -> new path
MOVED = {
    "fcrattack.validation": "fcrattack.base.validation",
    "fcrattack.store": "fcrattack.base.store",
    "fcrattack.stats": "fcrattack.base.stats",
    "fcrattack.seeding": "fcrattack.base.seeding",
    "fcrattack.distributed": "fcrattack.base.distributed",
    "fcrattack.warn": "fcrattack.base.warn",
    "fcrattack.train": "fcrattack.models.train",
    "fcrattack.saliency": "fcrattack.regions.saliency",
    "fcrattack.attack_run": "fcrattack.app.attack_dataset",
    "fcrattack.attack_batch": "fcrattack.app.attack",
    "fcrattack.attack_output": "fcrattack.app.folder",
    "fcrattack.demo": "fcrattack.app.demo",
    "fcrattack.cam_run": "fcrattack.app.cam_maps",
    "fcrattack.attacks.fgsm_masked": "fcrattack.attacks.masked_fgsm",
    "fcrattack.models.cifar_resnet18": "fcrattack.models.cifar_resnet18_34",
    **{
        f"{_EXP}.{m}": f"{_EXP}.machinery.{m}"
        for m in ("spec", "paired", "results", "loaders", "region_masks", "preflight")
    },
    f"{_EXP}.runner": f"{_EXP}.machinery.driver",
    **{
        f"{_EXP}.{m}": f"{_EXP}.catalog.{m}"
        for m in (
            "comparison",
            "fcr_importance",
            "masked_fgsm",
            "region_controls",
            "region_thesis",
            "region_tradeoff",
            "sweep_steps_temperature",
            "sweep_threshold",
            "transfer",
            "transfer_equal_l2",
            "visual",
            "whitebox",
        )
    },
}


class _MovedFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path of ``MOVED`` and loads it as the module at its new path."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(MOVED[spec.name])
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # the import system set the old path's spec on the module: give it back its own
        module.__spec__ = self._own_spec


def install() -> None:
    """Register the finder once (after the normal ones, which find every current path)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
