"""Reproduce every table and figure of the FCR paper: named configs (``config``), a resumable
runner with an append-only per-image store (``runner``, ``store``) and model pre-flight
checks (``preflight``).

    >>> from fcrattack import experiments
    >>> experiments.run("whitebox", preset="cpu", out_dir="runs/repro")   # or "all"
    >>> from fcrattack import report; report.render("runs/repro")
"""

from .config import EXPERIMENTS, OPTIONAL_ATTACKS, PRESETS, ExperimentConfig, get_config
from .preflight import preflight
from .runner import run
from .store import ResultStore, read_records

__all__ = ["EXPERIMENTS", "OPTIONAL_ATTACKS", "PRESETS", "ExperimentConfig", "ResultStore",
           "get_config", "preflight", "read_records", "run"]
