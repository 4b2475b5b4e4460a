"""Run one experiment config into a result store, resumably.

Protocol (RobustBench / AutoAttack style): per part (data set), every model classifies the
drawn images; only the images that *every* model of the experiment classifies correctly are
attacked, and that count is the denominator of every rate (saved in ``status.json``). Before
any attack each model passes ``preflight``. Attack seeds
are per image: each attack gets ``seed=config.seed`` and ``ids=`` the image ids, so a resumed
run attacks an image exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ...attacks import Attack, AttackResult, build
from ...base.distributed import Context
from ...base.store import ResultStore, record_key, write_torch
from ...cam import fcr_region, gradcam
from ...data import Dataset
from .inputs import check_same_inputs, earlier_parts, inputs_digest
from .loaders import load_part_data, load_spec_model, update_json
from .paired import PairedRuns, check_same_images
from .preflight import preflight
from .region_masks import PartRegions, check_partners, partners
from .spec import AttackSetting, ExperimentConfig, Part

log = logging.getLogger(__name__)

PREFLIGHT_IMAGES = 8


class ExperimentDriver:
    """Runs one ``ExperimentConfig`` into a ``ResultStore``."""

    def __init__(
        self,
        cfg: ExperimentConfig,
        store: ResultStore,
        device: torch.device,
        root: Path,
        dist: Context | None = None,
        quiet: bool = False,
    ) -> None:
        self.cfg, self.store, self.device, self.root = cfg, store, device, root
        self.quiet = quiet  # no progress bars
        self.dist = dist or Context()  # data-parallel rank and world, see .distributed
        self.status_path = store.dir / "status.json"
        parts = earlier_parts(self.status_path, cfg.name, [p.name for p in cfg.parts])
        self.status: dict[str, Any] = {"scale": cfg.scale, "version": cfg.version, "parts": parts}
        self._regions = PartRegions(cfg.seed, device)  # the masked runs' regions, per part

    def _predict(self, model: nn.Module, x: torch.Tensor, bs: int) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat(
                [model(x[i : i + bs].to(self.device)).argmax(1).cpu() for i in range(0, len(x), bs)]
            )

    def _build(self, run: AttackSetting, model: nn.Module, part: Part, **extra: Any) -> Attack:
        """The attack of ``run``: the paper's settings for the part's data set, updated by the
        run's params and ``extra``, seeded with the config's seed."""
        return build(
            run.attack,
            model,
            preset="paper",
            dataset=part.data.dataset,
            **{**run.params, **extra, "seed": self.cfg.seed},
        )

    def _key(self, part: Part, model: str, attack: str, setting: str, image_id: str) -> str:
        return record_key(self.cfg.name, part.name, model, attack, setting, image_id)

    def run(self) -> dict[str, Any]:
        for part in self.cfg.parts:
            by_size = {s: load_part_data(part, self.root, s) for s in {m.size for m in part.models}}
            datas = {m.name: by_size[m.size] for m in part.models}  # each at its model's size
            data = datas[part.models[0].name]
            models = {m.name: load_spec_model(m, self.root, self.device) for m in part.models}
            bs = part.data.batch_size
            info: dict[str, Any] = {"n_drawn": len(data), "models": {}}
            correct = torch.ones(len(data), dtype=torch.bool)
            for spec in part.models:
                model, mdata = models[spec.name], datas[spec.name]
                warn = preflight(
                    model,
                    mdata.images[:PREFLIGHT_IMAGES],
                    mdata.labels[:PREFLIGHT_IMAGES],
                    name=spec.name,
                )
                ok = self._predict(model, mdata.images, bs) == mdata.labels
                correct &= ok
                info["models"][spec.name] = {
                    "label": spec.label,
                    "stands_for": spec.stands_for,
                    "preflight": warn,
                    "clean_correct": int(ok.sum()),
                    "clean_accuracy": float(ok.float().mean()),
                }
            correct = self.dist.broadcast(correct)  # the same eligible set on every rank
            idx = correct.nonzero()[:, 0]
            info["n_eligible"] = len(idx)
            info["eligible_ids"] = [data.ids[i] for i in idx.tolist()]
            info["inputs"] = inputs_digest(models, data)
            at = (self.status_path, self.cfg.name, part.name, info, self.store)
            info["inputs"] = check_same_inputs(*at)
            if self.cfg.kind == "paired":  # its stages take the first images: keep them
                check_same_images(*at)
            self.status["parts"][part.name] = info
            if self.dist.is_main:
                update_json(self.status_path, self.cfg.name, self.status)  # report mid-run
            sub, names = data.subset(idx), (self.cfg.name, part.name)
            log.info(
                "%s/%s: %d of %d images classified correctly by every model (%s)",
                *names,
                len(idx),
                len(data),
                ", ".join(models),
            )
            if len(sub) == 0:
                log.warning("%s/%s: no image is classified correctly by every model", *names)
                continue
            if self.cfg.kind == "paired":  # each model on its own data (its input size)
                subs = {name: d.subset(idx) for name, d in datas.items()}
                PairedRuns(self, part, models, subs, on_stage=self.store.pack).run()
            else:
                getattr(self, f"_run_{self.cfg.kind}")(part, models, sub)
            self._regions.clear()
        return self.status

    def _batches(self, todo: list[int], bs: int, desc: str) -> Iterator[list[int]]:
        """Chunks of ``todo`` of at most ``bs``, with a tqdm bar (images, ETA)."""
        bar = tqdm(
            total=len(todo),
            desc=desc,
            unit="img",
            dynamic_ncols=True,
            disable=self.quiet or not self.dist.is_main,
        )
        try:
            for i in range(0, len(todo), bs):
                chunk = todo[i : i + bs]
                yield chunk
                bar.update(len(chunk))
        finally:
            bar.close()

    def _run_importance(self, part: Part, models: dict[str, nn.Module], data: Dataset) -> None:
        setting = f"t={self.cfg.t}"
        for name, model in models.items():
            keys = [self._key(part, name, "importance", setting, i) for i in data.ids]
            todo = self.dist.shard([j for j, k in enumerate(keys) if k not in self.store])
            for chunk in self._batches(
                todo, part.data.batch_size, f"{self.cfg.name}/{part.name}/{name}"
            ):
                t0 = time.perf_counter()
                x, y = data.images[chunk].to(self.device), data.labels[chunk]
                mask = fcr_region(model, x, y.to(self.device), t=self.cfg.t)
                with torch.no_grad():
                    fcr_ok = model(x * mask).argmax(1).cpu() == y
                    non_ok = model(x * (1 - mask)).argmax(1).cpu() == y
                dt = (time.perf_counter() - t0) / len(chunk)
                area = mask.flatten(1).mean(1).cpu()
                self.store.append(
                    {
                        "key": keys[j],
                        "experiment": self.cfg.name,
                        "part": part.name,
                        "model": name,
                        "attack": "importance",
                        "attack_key": "importance",
                        "setting": setting,
                        "id": data.ids[j],
                        "label": int(y[r]),
                        "correct_fcr": bool(fcr_ok[r]),
                        "correct_nonfcr": bool(non_ok[r]),
                        "mask_fraction": float(area[r]),
                        "time_s": dt,
                    }
                    for r, j in enumerate(chunk)
                )
            self.dist.sync(self.store)

    def _attack_batches(
        self,
        part: Part,
        name: str,
        model: nn.Module,
        run: AttackSetting,
        data: Dataset,
        targets: dict[str, nn.Module] | None = None,
    ) -> None:
        """Attack the images of ``data`` that have no record yet for (model, run), batch by
        batch, appending each batch's records; with ``targets``, also record whether each
        adversarial image fools each target model (transfer). A run with ``mask_t`` is
        restricted to its region (``.region_masks.PartRegions``)."""
        setting = run.setting()
        keys = [self._key(part, name, run.key, setting, i) for i in data.ids]
        todo = [j for j, k in enumerate(keys) if k not in self.store]
        if targets:
            self._check_targets(run, keys, set(targets))
        budget = None
        if run.budget_from:
            ref = {
                r["id"]: r["l2"]
                for r in self.store.select(
                    experiment=self.cfg.name, part=part.name, model=name, attack_key=run.budget_from
                )
            }
            missing = [j for j in todo if data.ids[j] not in ref]
            if missing:
                log.warning(
                    "%s: no %s record (budget) for %d images; they are skipped",
                    run.key,
                    run.budget_from,
                    len(missing),
                )
            todo = [j for j in todo if data.ids[j] in ref]
            budget = torch.tensor([ref.get(i, 0.0) for i in data.ids], dtype=torch.float32)
        check_partners(self.store, self.cfg.name, part.name, name, run, data)
        todo = self.dist.shard(todo)
        masks = self._regions.masks(part, name, model, run, data) if todo else None
        partner = partners(data) if run.mask_source == "shuffled-fcr" else None
        for chunk in self._batches(
            todo, part.data.batch_size, f"{self.cfg.name}/{part.name}/{name}/{run.key}"
        ):
            extra = {} if budget is None else {"eps": budget[chunk]}
            attack = self._build(run, model, part, **extra)
            ids = [data.ids[j] for j in chunk]
            x, y = data.images[chunk], data.labels[chunk]
            t0 = time.perf_counter()
            res = attack.run(x, y, mask=None if masks is None else masks[chunk], ids=ids)
            dt = (time.perf_counter() - t0) / len(chunk)
            fooled: dict[str, list[bool]] = {}
            if targets:
                for tname, tmodel in targets.items():
                    with torch.no_grad():
                        pred = tmodel(res.x_adv.to(self.device)).argmax(1).cpu()
                    fooled[tname] = (pred != y).tolist()
            rows = self._rows(part, name, run, keys, chunk, ids, res, dt, budget, fooled)
            if partner is not None:
                for row in rows:
                    row["mask_partner"] = partner[row["id"]]
            self.store.append(rows)

    def _check_targets(self, run: AttackSetting, keys: list[str], targets: set[str]) -> None:
        """Refuse to resume transfer records evaluated on other models: record keys do not
        name the target models, so a changed model list would leave cells without them."""
        for k in keys:
            rec = self.store.records.get(k)
            if rec is not None and set(rec.get("transfer", {})) != targets:
                raise ValueError(
                    f"{self.store.dir}: {run.key} record {rec['id']} of {rec['model']} was "
                    f"evaluated on {sorted(rec.get('transfer', {}))}, this run's models are "
                    f"{sorted(targets)}: the model list changed. Choose another output folder"
                )

    def _rows(
        self,
        part: Part,
        name: str,
        run: AttackSetting,
        keys: list[str],
        chunk: list[int],
        ids: list[str],
        res: AttackResult,
        dt: float,
        budget: torch.Tensor | None = None,
        fooled: dict[str, list[bool]] | None = None,
    ) -> list[dict[str, Any]]:
        """The records of one attacked batch (``chunk``: rows of the part's eligible images)."""
        rows = res.records(ids)
        for r, (j, row) in enumerate(zip(chunk, rows)):
            row.update(
                key=keys[j],
                experiment=self.cfg.name,
                part=part.name,
                model=name,
                attack=run.attack,
                attack_key=run.key,
                setting=run.setting(),
                time_s=dt,
            )
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
            attack = self._build(run, model, part)
            keys = [self._key(part, name, run.key, run.setting(), i) for i in data.ids]
            t0 = time.perf_counter()
            res = attack.run(x, y, ids=data.ids)
            dt = (time.perf_counter() - t0) / len(x)
            self.store.append(
                self._rows(part, name, run, keys, list(range(len(x))), data.ids, res, dt)
            )
            adv[run.label] = res.x_adv
        xd, yd = x.to(self.device), y.to(self.device)
        cam = gradcam(model, xd, yd).cpu()
        mask = fcr_region(model, xd, yd, t=self.cfg.t).cpu()
        path.parent.mkdir(parents=True, exist_ok=True)
        write_torch(
            path,
            {
                "ids": data.ids,
                "x": x,
                "y": y,
                "cam": cam,
                "mask": mask,
                "adv": adv,
                "classes": data.classes,
                "model": name,
            },
        )
