"""``fcrattack reproduce``: run experiments into an output folder, resumably.

Output folder: ``records.jsonl`` (per-image results, see ``fcrattack.base.store``),
``config.json`` (every config run, by name), ``env.json`` (versions, device, seed, git
commit), ``status.json`` (denominators, clean accuracy, pre-flight warnings,
wall time) and ``artifacts/`` (tensors of the visual experiment). Data-parallel under
torchrun (see ``fcrattack.base.distributed``).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._version import __version__
from ..base.distributed import Context
from ..base.store import output_dir, write_json
from ..base.validation import resolve_device
from ..data import shared_root
from .machinery.driver import ExperimentDriver
from .machinery.loaders import update_json
from .machinery.spec import READABLE, VERSION, ExperimentConfig, upgrade
from .registry import EXPERIMENTS, get_config

log = logging.getLogger(__name__)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device, seed: int) -> dict[str, Any]:
    """Versions, device, threads, seed and git commit, for ``env.json``."""
    return {
        "fcrattack": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "device": str(device),
        "device_name": (
            torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else platform.processor() or platform.machine()
        ),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "seed": seed,
        "git_commit": _git_commit(),
        "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def check_resumable(out_dir: Path, configs: Sequence[ExperimentConfig]) -> None:
    """Raise ValueError when ``out_dir`` holds records of one of ``configs`` written by another
    scale or a config version whose records cannot be read (``READABLE``): record keys name
    explicit settings only, so resuming would mix their results silently."""
    path = out_dir / "config.json"
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    for cfg in configs:
        old = saved.get(cfg.name)
        if old is None:
            continue
        version = old.get("version")
        readable = version == cfg.version or (version in READABLE and cfg.version == VERSION)
        if not readable or old.get("scale") != cfg.scale:
            raise ValueError(
                f"{out_dir} holds {cfg.name} results of config version {old.get('version')}, "
                f"scale {old.get('scale', old.get('preset'))!r}; this run is version "
                f"{cfg.version}, scale {cfg.scale!r}. Resuming would mix them: choose another "
                "output folder"
            )


def reproduce(
    name_or_all: str | ExperimentConfig | Sequence[str | ExperimentConfig],
    scale: str = "cpu",
    out_dir: str | Path = "runs/reproduce",
    device: str | torch.device | None = None,
    *,
    n: int | None = None,
    root: str | Path | None = None,
) -> dict[str, float]:
    """Run one experiment (a name or an ``ExperimentConfig``), a list of them, or
    ``"all"`` at ``scale`` ("cpu" or "paper") into ``out_dir``; resumes from the records
    already there. ``root``: the shared data/models folder (default:
    ``fcrattack.data.shared_root``). Returns the wall time (s) per experiment."""
    if name_or_all == "all":
        items: list[str | ExperimentConfig] = [k for k, e in EXPERIMENTS.items() if e.in_all]
    elif isinstance(name_or_all, (str, ExperimentConfig)):
        items = [name_or_all]
    else:
        items = list(name_or_all)
    configs = [
        c if isinstance(c, ExperimentConfig) else get_config(c, scale, n=n) for c in items
    ]  # validates every name before any work
    out = output_dir(out_dir)
    check_resumable(out, configs)
    dev = resolve_device(device)
    ctx, dev = Context.from_env(dev)  # data-parallel under torchrun
    try:
        store = ctx.store(out, upgrade=upgrade)
        base = shared_root(root)
        if ctx.is_main:
            write_json(out / "env.json", environment(dev, configs[0].seed))
        times = {}
        for cfg in configs:
            log.info("experiment %s (%s, scale %s)", cfg.name, cfg.paper_ref, cfg.scale)
            if ctx.is_main:
                update_json(out / "config.json", cfg.name, cfg.to_dict())
            t0 = time.perf_counter()
            status = ExperimentDriver(cfg, store, dev, base, ctx).run()
            times[cfg.name] = status["wall_s"] = time.perf_counter() - t0
            if ctx.is_main:
                update_json(store.dir / "status.json", cfg.name, status)
            log.info("experiment %s done in %.1f s", cfg.name, times[cfg.name])
    finally:
        ctx.close()
    return times
