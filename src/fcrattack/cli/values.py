"""The value types of the command line's arguments: each reads one argument's text and
refuses what does not fit with a message naming the problem."""

from __future__ import annotations

import argparse
import math
import os

from ..app.demo import SAMPLES
from ..base.seeding import MAX_SEED

__all__ = ["SAMPLES", "count", "floats", "out_dir", "positive", "samples", "seed", "threads"]

#: the most threads ``--threads`` takes, per CPU of the machine (more only slows torch down,
#: and tens of thousands stop its thread pool)
THREADS_PER_CPU = 4


def _shown(text: str) -> str:
    """An argument's text as a message shows it: a long one cut, with its length."""
    return repr(text) if len(text) <= 20 else f"{text[:8]!r}... ({len(text)} characters)"


def positive(text: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a positive integer, got {_shown(text)}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be positive, got {_shown(text)}")
    return value


def count(text: str) -> int:
    """An integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {_shown(text)}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {_shown(text)}")
    return value


def threads(text: str) -> int:
    """CPU threads: 1 to ``THREADS_PER_CPU`` times the machine's CPUs."""
    value = positive(text)
    cpus = os.cpu_count() or 1
    most = THREADS_PER_CPU * cpus
    if value > most:
        raise argparse.ArgumentTypeError(
            f"at most {most} threads ({THREADS_PER_CPU} per CPU; this machine has {cpus}), "
            f"got {_shown(text)}"
        )
    return value


def seed(text: str) -> int:
    """A seed: an integer from 0 to ``MAX_SEED``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        shown = text if len(text) <= 20 else f"{text[:8]}... ({len(text)} digits)"
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_SEED}, got {shown}")
    return value


def samples(text: str) -> int:
    """The number of bundled samples of the demo: 1 to ``SAMPLES``."""
    value = positive(text)
    if value > SAMPLES:
        raise argparse.ArgumentTypeError(f"there are {SAMPLES} bundled samples, got {value}")
    return value


def out_dir(text: str) -> str:
    """An output folder: not empty (that would write into the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must name a folder, got an empty string")
    return text


def floats(text: str) -> tuple[float, ...]:
    """'0.485,0.456,0.406' -> (0.485, 0.456, 0.406): finite numbers."""
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers, e.g. 0.485,0.456,0.406, got {text!r}"
        ) from None
    if not all(math.isfinite(v) for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers, got {text!r}")
    return values
