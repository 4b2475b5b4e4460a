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
from ..base.outputs import OutputFolder, writing
from ..base.store import PACKED, RECORDS, part_glob, write_json
from ..base.validation import resolve_device
from ..data import shared_root
from .machinery.driver import ExperimentDriver
from .machinery.loaders import update_json
from .machinery.saved_form import config_problem
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


CONFIG = "config.json"


def saved_configs(out_dir: str | Path) -> dict[str, dict[str, Any]] | None:
    """The experiment configs of ``out_dir/config.json`` by name (None without the file);
    a ValueError when the file is not of the form ``reproduce`` writes: a non-empty JSON
    object whose every value is the config of the known experiment its key names, with its
    ``version`` and ``scale``."""
    path = Path(out_dir) / CONFIG
    if not path.is_file():
        return None
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise ValueError(f"{path} is not a config.json of fcrattack reproduce ({exc})") from None
    if not isinstance(saved, dict) or not saved:
        why = "not a JSON object of experiment configs" if saved else "no experiment config"
    else:
        why = next((f"{k!r}: {w}" for k, v in saved.items() if (w := _not_config(k, v))), "")
    if why:
        raise ValueError(f"{path} is not a config.json of fcrattack reproduce ({why})")
    return saved


def _not_config(name: str, cfg: Any) -> str:
    """Why ``cfg`` is not the saved config of experiment ``name`` ("" when it is)."""
    if name not in EXPERIMENTS:
        return "not an experiment of fcrattack"
    if not isinstance(cfg, dict) or cfg.get("name") != name:
        return "not the config of that experiment"
    version = cfg.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        return "no config version"
    scale = cfg.get("scale", cfg.get("preset"))  # "preset" before config version 3
    return config_problem(cfg) if isinstance(scale, str) else "no scale"


def _ours(out_dir: Path) -> bool:
    """Whether ``out_dir`` holds a ``config.json`` of ``reproduce`` (``saved_configs``: a
    ValueError naming the problem when it holds one of another form)."""
    return saved_configs(out_dir) is not None


def check_resumable(out_dir: Path, configs: Sequence[ExperimentConfig]) -> None:
    """Raise ValueError when ``out_dir`` holds records of one of ``configs`` written by another
    scale or a config version whose records cannot be read (``READABLE``), or records without
    the ``config.json`` that says what wrote them: record keys name explicit settings only, so
    resuming would mix their results silently."""
    saved = saved_configs(out_dir)
    if saved is None:
        found = [p.name for p in (out_dir / RECORDS, out_dir / PACKED) if p.is_file()]
        found += sorted(p.name for p in out_dir.glob(part_glob(RECORDS)))
        if found:
            raise ValueError(
                f"{out_dir} holds records ({', '.join(found)}) but no config.json saying which "
                "experiments and settings wrote them; resuming could mix other results with "
                "this run's: choose another output folder"
            )
        return
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


def shared_folder(root: str | Path | None) -> Path:
    """The shared data and models folder (``fcrattack.data.shared_root``), which must exist."""
    base = shared_root(root)
    if not base.is_dir():
        how = "--shared" if root is not None else "the default ($FCRATTACK_SHARED, else ../shared)"
        what = "is not a folder" if base.exists() else "does not exist"
        raise FileNotFoundError(
            f"the shared folder {base} ({how}) {what}: reproduce reads its data sets "
            "and models from <shared>/data and <shared>/models; pass --shared DIR (root=) or "
            "set FCRATTACK_SHARED"
        )
    return base


def reproduce(
    name_or_all: str | ExperimentConfig | Sequence[str | ExperimentConfig],
    scale: str = "cpu",
    out_dir: str | Path = "runs/reproduce",
    device: str | torch.device | None = None,
    *,
    n: int | None = None,
    root: str | Path | None = None,
    quiet: bool = False,
) -> dict[str, float]:
    """Run one experiment (a name or an ``ExperimentConfig``), a list of them, or
    ``"all"`` at ``scale`` ("cpu" or "paper") into ``out_dir``; resumes from the records
    already there. ``root``: the shared data/models folder (default:
    ``fcrattack.data.shared_root``), which must exist; ``quiet``: no progress bars. The
    folder is guarded as every command's (``fcrattack.base.outputs.OutputFolder``: one
    writer at a time; a folder of another command, holding records without the
    ``config.json`` that names them, or a ``config.json`` not of the form ``reproduce`` writes
    (``saved_configs``), is refused). Returns the wall time (s) per experiment."""
    if name_or_all == "all":
        items: list[str | ExperimentConfig] = [k for k, e in EXPERIMENTS.items() if e.in_all]
    elif isinstance(name_or_all, (str, ExperimentConfig)):
        items = [name_or_all]
    else:
        items = list(name_or_all)
    configs = [
        c if isinstance(c, ExperimentConfig) else get_config(c, scale, n=n) for c in items
    ]  # validates every name before any work
    base = shared_folder(root)
    ctx, dev = Context.from_env(resolve_device(device))  # data-parallel under torchrun
    folder = None
    try:
        folder = _open(out_dir, configs, ctx)
        out = Path(out_dir)
        times = {}
        with writing(out):
            store = ctx.store(out, upgrade=upgrade)
            if ctx.is_main:
                write_json(out / "env.json", environment(dev, configs[0].seed))
            for cfg in configs:
                log.info("experiment %s (%s, scale %s)", cfg.name, cfg.paper_ref, cfg.scale)
                if ctx.is_main:
                    update_json(out / "config.json", cfg.name, cfg.to_dict())
                t0 = time.perf_counter()
                status = ExperimentDriver(cfg, store, dev, base, ctx, quiet=quiet).run()
                times[cfg.name] = status["wall_s"] = time.perf_counter() - t0
                if ctx.is_main:
                    update_json(store.dir / "status.json", cfg.name, status)
                log.info("experiment %s done in %.1f s", cfg.name, times[cfg.name])
    finally:
        if folder is not None:
            folder.close()
        ctx.close()
    return times


#: what reproduce writes at the top of its folder
OUTPUTS = (
    RECORDS,
    PACKED,
    part_glob(RECORDS),
    "config.json",
    "env.json",
    "status.json",
    "artifacts",
    "figures",
    "report.md",
    "report.html",
)


def _open(
    out_dir: str | Path, configs: Sequence[ExperimentConfig], ctx: Context
) -> OutputFolder | None:
    """The output folder, opened and checked on rank 0 (None on the other ranks), its error
    raised on every rank."""
    folder, error = None, None
    if ctx.is_main:
        try:
            folder = OutputFolder(
                out_dir,
                "reproduce",
                names=OUTPUTS,
                overwrite=None,
                resumable=True,
                same_version=False,
                adopt=_ours,
            )
            check_resumable(folder.dir, configs)
            folder.record(())
        except (ValueError, OSError) as exc:
            if folder is not None:
                folder.close()
            if not ctx.active:
                raise
            error = str(exc)
    error = ctx.broadcast(error)
    if error is not None:
        raise ValueError(error)
    return folder
