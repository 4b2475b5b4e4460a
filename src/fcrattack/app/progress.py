"""Progress bars and the worker threads of the data-set commands."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

#: default reader (decoding) and writer (PNG encoding) threads: the CPUs this process may use
WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 4)


def progress_bar(iterable: Iterable[Any] | None, quiet: bool, **kwargs: Any) -> Any:
    """A tqdm bar over ``iterable`` (or updated by hand), off when ``quiet``."""
    return tqdm(iterable, disable=True if quiet else None, **kwargs)
