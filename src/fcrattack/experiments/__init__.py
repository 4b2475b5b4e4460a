"""Reproduce every table and figure of the FCR paper: one module per experiment (its config
and its report section), a registry, a resumable driver with an append-only per-image store,
and model pre-flight checks.

    >>> from fcrattack import experiments
    >>> experiments.reproduce("whitebox", scale="cpu", out_dir="runs/repro")   # or "all"
    >>> from fcrattack import report; report.render("runs/repro")
"""

from ..base.store import ResultStore, read_records
from .machinery.preflight import preflight
from .machinery.results import Results
from .machinery.spec import SCALES, Experiment, ExperimentConfig
from .registry import EXPERIMENTS, get_config
from .reproduction import reproduce

#: the old name of ``reproduce``
run = reproduce

__all__ = [
    "EXPERIMENTS",
    "SCALES",
    "Experiment",
    "ExperimentConfig",
    "ResultStore",
    "Results",
    "get_config",
    "preflight",
    "read_records",
    "reproduce",
    "run",
]
