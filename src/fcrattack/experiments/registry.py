"""The experiments, in report order: one module each (its config and its report section)."""

from __future__ import annotations

from .catalog import (
    comparison,
    fcr_importance,
    masked_fgsm,
    region_controls,
    region_thesis,
    region_tradeoff,
    sweep_steps_temperature,
    sweep_threshold,
    transfer,
    transfer_equal_l2,
    visual,
    whitebox,
    whitebox_imagenet,
)
from .machinery.spec import Experiment, ExperimentConfig

EXPERIMENTS: dict[str, Experiment] = {
    m.EXPERIMENT.name: m.EXPERIMENT
    for m in (
        fcr_importance,
        whitebox,
        comparison,
        masked_fgsm,
        transfer,
        sweep_steps_temperature,
        sweep_threshold,
        visual,
        region_tradeoff,
        transfer_equal_l2,
        region_controls,
        region_thesis,
        whitebox_imagenet,
    )
}


def get_config(name: str, scale: str = "cpu", *, n: int | None = None) -> ExperimentConfig:
    """The config of experiment ``name`` at ``scale``; ``n`` overrides the number of images of
    every part."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; choose one of {list(EXPERIMENTS)}")
    return EXPERIMENTS[name].config(scale, n=n)
