"""Run experiment configs into an output folder, resumably.

Protocol (RobustBench / AutoAttack style): per part (data set), every model classifies the
drawn images; only the images that *every* model of the experiment classifies correctly are
attacked, and that count is the denominator of every rate (saved in ``status.json``). Before
any attack each model passes :func:`~fcrattack.experiments.preflight.preflight`.

Output folder: ``records.jsonl`` (per-image results, see :mod:`.store`), ``config.json``
(every config run, by name), ``env.json`` (versions, device, seed, git commit),
``status.json`` (denominators, clean accuracy, pre-flight warnings, skipped runs, wall time)
and ``artifacts/`` (tensors of the visual experiment). Attack seeds are per image: each attack
gets ``seed=config.seed`` and ``ids=`` the image ids, so a resumed run attacks an image
exactly as an uninterrupted one.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .. import __version__
from .. import attacks as attacks_pkg
from ..cam import fcr_region, gradcam
from ..data import Dataset, cifar10, imagenet_folder
from ..models import load_checkpoint, load_model
from .config import EXPERIMENTS, AttackRun, ExperimentConfig, ModelSpec, Part, get_config
from .distributed import Context
from .preflight import preflight
from .store import ResultStore, record_key

log = logging.getLogger(__name__)

PREFLIGHT_IMAGES = 8


def shared_root(root: str | Path | None = None) -> Path:
    """Where data and model files live: ``root``, else ``$FCRATTACK_SHARED``, else the first
    existing ``../shared`` next to the working directory or the project checkout."""
    if root is not None:
        return Path(root)
    if "FCRATTACK_SHARED" in os.environ:
        return Path(os.environ["FCRATTACK_SHARED"])
    candidates = [Path.cwd().parent / "shared", Path(__file__).resolve().parents[4] / "shared"]
    return next((c for c in candidates if c.is_dir()), candidates[0])


def load_spec_model(spec: ModelSpec, root: Path, device: torch.device) -> nn.Module:
    """The model a :class:`ModelSpec` names, on ``device``, in eval mode."""
    if spec.source in ("default", "efficientnet-lite0"):
        model = load_model(spec.source)
    else:
        matches = sorted(root.glob(spec.source))
        if not matches:
            raise FileNotFoundError(f"model {spec.name}: no file matches {root / spec.source}")
        model = load_checkpoint(matches[0], spec.arch)
    return model.to(device).eval()


def load_part_data(part: Part, root: Path) -> Dataset:
    """The seeded image subset of a part."""
    d = part.data
    if d.dataset == "cifar10":
        return cifar10(root / d.root, d.split, n=d.n, seed=d.seed)
    if d.dataset == "imagenet":
        return imagenet_folder(root / d.root, n=d.n, seed=d.seed)
    raise ValueError(f"unknown dataset {d.dataset!r}")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=Path(__file__).parent,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device, seed: int) -> dict[str, Any]:
    """Versions, device, threads, seed and git commit, for ``env.json``."""
    return {"fcrattack": __version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "torch": torch.__version__,
            "numpy": np.__version__, "device": str(device),
            "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                            else platform.processor() or platform.machine()),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "seed": seed, "git_commit": _git_commit(),
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _update_json(path: Path, key: str, value: Any) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def build_attack(run: AttackRun, model: nn.Module, dataset: str, seed: int,
                 batch_size: int, **extra: Any) -> attacks_pkg.Attack | None:
    """The attack of ``run``: its class's ``paper()`` preset (when it has one) updated by the
    run's params and ``extra``; None when the attack is not registered."""
    cls = attacks_pkg.ATTACKS.get(run.attack)
    if cls is None:
        return None
    params = {**run.params, **extra, "seed": seed, "batch_size": batch_size}
    paper = getattr(cls, "paper", None)
    if paper is None:
        return cls(model, **params)
    if "dataset" in inspect.signature(paper).parameters:
        return paper(model, dataset, **params)
    return paper(model, **params)


class ExperimentRunner:
    """Runs one :class:`ExperimentConfig` into a :class:`ResultStore`."""

    def __init__(self, cfg: ExperimentConfig, store: ResultStore, device: torch.device,
                 root: Path, dist: Context | None = None) -> None:
        self.cfg, self.store, self.device, self.root = cfg, store, device, root
        self.dist = dist or Context()  # data-parallel rank and world, see .distributed
        self.status_path = store.dir / "status.json"
        self.status: dict[str, Any] = {"preset": cfg.preset, "version": cfg.version,
                                       "parts": {}, "skipped": []}

    # --- shared steps ---------------------------------------------------------------------
    def _predict(self, model: nn.Module, x: torch.Tensor, bs: int) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([model(x[i:i + bs].to(self.device)).argmax(1).cpu()
                              for i in range(0, len(x), bs)])

    def _skip(self, part: Part, model: str, run: AttackRun, reason: str) -> None:
        note = {"part": part.name, "model": model, "run": run.key, "reason": reason}
        if note not in self.status["skipped"]:
            self.status["skipped"].append(note)
        (log.info if run.optional else log.warning)("skipping %s on %s/%s: %s", run.key,
                                                    part.name, model, reason)

    def _key(self, part: Part, model: str, attack: str, setting: str, image_id: str) -> str:
        return record_key(self.cfg.name, part.name, model, attack, setting, image_id)

    def run(self) -> dict[str, Any]:
        for part in self.cfg.parts:
            data = load_part_data(part, self.root)
            models = {m.name: load_spec_model(m, self.root, self.device) for m in part.models}
            bs = part.data.batch_size
            info: dict[str, Any] = {"n_drawn": len(data), "models": {}}
            correct = torch.ones(len(data), dtype=torch.bool)
            for spec in part.models:
                model = models[spec.name]
                warn = preflight(model, data.images[:PREFLIGHT_IMAGES],
                                 data.labels[:PREFLIGHT_IMAGES], name=spec.name)
                ok = self._predict(model, data.images, bs) == data.labels
                correct &= ok
                info["models"][spec.name] = {
                    "label": spec.label, "stands_for": spec.stands_for, "preflight": warn,
                    "clean_correct": int(ok.sum()), "clean_accuracy": float(ok.float().mean())}
            correct = self.dist.broadcast(correct)  # the same eligible set on every rank
            idx = correct.nonzero()[:, 0]
            info["n_eligible"] = len(idx)
            info["eligible_ids"] = [data.ids[i] for i in idx.tolist()]
            self.status["parts"][part.name] = info
            if self.dist.is_main:
                _update_json(self.status_path, self.cfg.name, self.status)  # report mid-run
            log.info("%s/%s: %d of %d images classified correctly by every model (%s)",
                     self.cfg.name, part.name, len(idx), len(data), ", ".join(models))
            sub = data.subset(idx)
            if len(sub) == 0:
                log.warning("%s/%s: no image is classified correctly by every model",
                            self.cfg.name, part.name)
                continue
            getattr(self, f"_run_{self.cfg.kind}")(part, models, sub)
        return self.status

    def _batches(self, todo: list[int], bs: int, desc: str) -> Iterator[list[int]]:
        """Chunks of ``todo`` of at most ``bs``, with a tqdm bar (images, ETA)."""
        bar = tqdm(total=len(todo), desc=desc, unit="img", dynamic_ncols=True,
                   disable=not self.dist.is_main)
        try:
            for i in range(0, len(todo), bs):
                chunk = todo[i:i + bs]
                yield chunk
                bar.update(len(chunk))
        finally:
            bar.close()

    # --- kinds ----------------------------------------------------------------------------
    def _run_importance(self, part: Part, models: dict[str, nn.Module], data: Dataset) -> None:
        setting = f"t={self.cfg.t}"
        for name, model in models.items():
            keys = [self._key(part, name, "importance", setting, i) for i in data.ids]
            todo = self.dist.shard([j for j, k in enumerate(keys) if k not in self.store])
            for chunk in self._batches(todo, part.data.batch_size,
                                       f"{self.cfg.name}/{part.name}/{name}"):
                t0 = time.perf_counter()
                x, y = data.images[chunk].to(self.device), data.labels[chunk]
                mask = fcr_region(model, x, y.to(self.device), t=self.cfg.t)
                with torch.no_grad():
                    fcr_ok = model(x * mask).argmax(1).cpu() == y
                    non_ok = model(x * (1 - mask)).argmax(1).cpu() == y
                dt = (time.perf_counter() - t0) / len(chunk)
                area = mask.flatten(1).mean(1).cpu()
                self.store.append({
                    "key": keys[j], "experiment": self.cfg.name, "part": part.name,
                    "model": name, "attack": "importance", "setting": setting,
                    "id": data.ids[j], "label": int(y[r]), "correct_fcr": bool(fcr_ok[r]),
                    "correct_nonfcr": bool(non_ok[r]), "mask_fraction": float(area[r]),
                    "time_s": dt} for r, j in enumerate(chunk))
            self.dist.sync(self.store)

    def _attack_batches(self, part: Part, name: str, model: nn.Module, run: AttackRun,
                        data: Dataset, targets: dict[str, nn.Module] | None = None) -> None:
        """Attack the images of ``data`` that have no record yet for (model, run), batch by
        batch, appending each batch's records; with ``targets``, also record whether each
        adversarial image fools each target model (transfer). A run with ``mask_t`` is
        restricted to ``model``'s FCR mask of each image (true class, threshold ``mask_t``)."""
        if run.attack not in attacks_pkg.ATTACKS:
            self._skip(part, name, run, f"attack {run.attack!r} is not registered")
            return
        setting = run.setting()
        keys = [self._key(part, name, run.key, setting, i) for i in data.ids]
        todo = [j for j, k in enumerate(keys) if k not in self.store]
        budget = None
        if run.budget_from:
            ref = {r["id"]: r["l2"] for r in self.store.select(
                experiment=self.cfg.name, part=part.name, model=name, attack=run.budget_from)}
            missing = [j for j in todo if data.ids[j] not in ref]
            if missing:
                log.warning("%s: no %s record (budget) for %d images; they are skipped",
                            run.key, run.budget_from, len(missing))
            todo = [j for j in todo if data.ids[j] in ref]
            budget = torch.tensor([ref.get(i, 0.0) for i in data.ids], dtype=torch.float32)
        todo = self.dist.shard(todo)
        for chunk in self._batches(todo, part.data.batch_size,
                                   f"{self.cfg.name}/{part.name}/{name}/{run.key}"):
            extra = {} if budget is None else {"eps": budget[chunk]}
            try:
                attack = build_attack(run, model, part.data.dataset, self.cfg.seed,
                                      part.data.batch_size, **extra)
            except (TypeError, ValueError) as exc:
                reason = (f"{run.attack} does not accept a per-image eps ({exc}): not available"
                          if budget is not None else f"cannot build {run.attack}: {exc}")
                self._skip(part, name, run, reason)
                return
            ids = [data.ids[j] for j in chunk]
            x, y = data.images[chunk], data.labels[chunk]
            t0 = time.perf_counter()
            mask = None if run.mask_t is None else fcr_region(
                model, x.to(self.device), y.to(self.device), t=run.mask_t).cpu()
            res = attack.run(x, y, mask=mask, ids=ids)
            dt = (time.perf_counter() - t0) / len(chunk)
            fooled: dict[str, list[bool]] = {}
            if targets:
                for tname, tmodel in targets.items():
                    with torch.no_grad():
                        pred = tmodel(res.x_adv.to(self.device)).argmax(1).cpu()
                    fooled[tname] = (pred != y).tolist()
            self.store.append(self._rows(part, name, run, keys, chunk, ids, res, dt, budget,
                                         fooled))

    def _rows(self, part: Part, name: str, run: AttackRun, keys: list[str], chunk: list[int],
              ids: list[str], res: attacks_pkg.AttackResult, dt: float,
              budget: torch.Tensor | None = None,
              fooled: dict[str, list[bool]] | None = None) -> list[dict[str, Any]]:
        """The records of one attacked batch (``chunk``: rows of the part's eligible images)."""
        rows = res.records(ids)
        for r, (j, row) in enumerate(zip(chunk, rows)):
            row.update(key=keys[j], experiment=self.cfg.name, part=part.name, model=name,
                       attack=run.key, attack_class=run.attack, setting=run.setting(),
                       time_s=dt)
            if res.mask is not None:
                row["mask_fraction"] = float(res.mask[r].float().mean())
            if budget is not None:
                row["budget_l2"] = float(budget[j])
            if fooled:
                row["transfer"] = {t: bool(v[r]) for t, v in fooled.items()}
        return rows

    def _run_attack(self, part: Part, models: dict[str, nn.Module], data: Dataset) -> None:
        for name, model in models.items():
            for run in part.runs:
                self._attack_batches(part, name, model, run, data)
                self.dist.sync(self.store)

    def _run_transfer(self, part: Part, models: dict[str, nn.Module], data: Dataset) -> None:
        for name, model in models.items():
            for run in part.runs:
                self._attack_batches(part, name, model, run, data, targets=models)
                self.dist.sync(self.store)

    def _run_visual(self, part: Part, models: dict[str, nn.Module], data: Dataset) -> None:
        """The visual experiment, on rank 0 alone when data-parallel (a few images)."""
        if self.dist.is_main:
            self._visual(part, models, data)
        self.dist.sync(self.store)

    def _visual(self, part: Part, models: dict[str, nn.Module], data: Dataset) -> None:
        """Attack the first few images with each run on the first model; save the images,
        Grad-CAM maps, masks and adversarial examples to ``artifacts/`` for the panels."""
        name, model = next(iter(models.items()))
        data = data.subset(list(range(min(len(data), self.cfg.panel_images))))
        path = self.store.dir / "artifacts" / f"visual-{part.name}-{name}.pt"
        if path.is_file():
            return
        x, y = data.images, data.labels
        adv = {}
        for run in part.runs:
            attack = build_attack(run, model, part.data.dataset, self.cfg.seed, len(x))
            if attack is None:
                self._skip(part, name, run, f"attack {run.attack!r} is not registered")
                continue
            keys = [self._key(part, name, run.key, run.setting(), i) for i in data.ids]
            t0 = time.perf_counter()
            res = attack.run(x, y, ids=data.ids)
            dt = (time.perf_counter() - t0) / len(x)
            self.store.append(self._rows(part, name, run, keys, list(range(len(x))),
                                         data.ids, res, dt))
            adv[run.label] = res.x_adv
        xd, yd = x.to(self.device), y.to(self.device)
        cam = gradcam(model, xd, yd).cpu()
        mask = fcr_region(model, xd, yd, t=self.cfg.t).cpu()
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"ids": data.ids, "x": x, "y": y, "cam": cam, "mask": mask, "adv": adv,
                    "classes": data.classes, "model": name}, path)


def check_resumable(out_dir: Path, configs: Sequence[ExperimentConfig]) -> None:
    """Raise ValueError when ``out_dir`` holds records of one of ``configs`` written by another
    config version or preset: record keys name explicit settings only, so resuming would mix
    their results silently."""
    path = out_dir / "config.json"
    if not path.is_file():
        return
    saved = json.loads(path.read_text())
    for cfg in configs:
        old = saved.get(cfg.name)
        if old is None:
            continue
        if (old.get("version"), old.get("preset")) != (cfg.version, cfg.preset):
            raise ValueError(
                f"{out_dir} holds {cfg.name} results of config version {old.get('version')}, "
                f"preset {old.get('preset')!r}; this run is version {cfg.version}, preset "
                f"{cfg.preset!r}. Resuming would mix them: choose another output folder")


def run(name_or_all: str | ExperimentConfig | Sequence[str | ExperimentConfig],
        preset: str = "cpu", out_dir: str | Path = "runs/reproduce",
        device: str | torch.device | None = None, *, n: int | None = None,
        root: str | Path | None = None) -> dict[str, float]:
    """Run one experiment (a name or an :class:`ExperimentConfig`), a list of them, or
    ``"all"`` at ``preset`` into ``out_dir``; resumes from the records already there.
    Returns the wall time (s) per experiment."""
    if name_or_all == "all":
        items: list[str | ExperimentConfig] = list(EXPERIMENTS)
    elif isinstance(name_or_all, (str, ExperimentConfig)):
        items = [name_or_all]
    else:
        items = list(name_or_all)
    configs = [c if isinstance(c, ExperimentConfig) else get_config(c, preset, n=n)
               for c in items]  # validates every name before any work
    check_resumable(Path(out_dir), configs)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ctx, dev = Context.from_env(dev)  # data-parallel under torchrun, see .distributed
    try:
        out = Path(out_dir)
        store = ctx.store(out)
        base = shared_root(root)
        if ctx.is_main:
            (out / "env.json").write_text(json.dumps(
                environment(dev, configs[0].seed), indent=1))
        times = {}
        for cfg in configs:
            log.info("experiment %s (%s, preset %s)", cfg.name, cfg.paper_ref, preset)
            if ctx.is_main:
                _update_json(out / "config.json", cfg.name, cfg.to_dict())
            t0 = time.perf_counter()
            status = ExperimentRunner(cfg, store, dev, base, ctx).run()
            times[cfg.name] = status["wall_s"] = time.perf_counter() - t0
            if ctx.is_main:
                _update_json(store.dir / "status.json", cfg.name, status)
            log.info("experiment %s done in %.1f s", cfg.name, times[cfg.name])
    finally:
        ctx.close()
    return times
