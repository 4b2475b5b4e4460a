"""The "paired" experiment kind: staged, image-major runs whose records pair up early.

Every run of a phase is run on the same images before the next images start: the work of a
phase is cut at the part's ``stages`` (cumulative image counts), and within a stage each
chunk of images is attacked by every run that needs it, the regions of one image batched
together (same image, many masks, one attack call per group of runs that share their
attack and options). An interrupted run therefore leaves complete pairs (the FCR and its
controls on the same images) for the images it reached, and a resumed run attacks only the
(run, image) pairs without a record. Each model sees the images at its own input size
(``ModelSpec.size``); ``ModelSpec.max_images`` and ``AttackSetting.first`` cap how many of the
eligible images a model and a run attack (``max_images=0``: the model only decides which
images are eligible). A run with ``budget_from`` takes its L2 budget from that run's records
of the same model: each image's own L2 (``budget_rule`` "per-image") or their median over
the fooled images (one budget per model).
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from tqdm.auto import tqdm

from ...base.store import ResultStore
from ...data import Dataset
from .inputs import part_status
from .region_masks import check_partners, partners
from .spec import AttackSetting, ModelSpec, Part

if TYPE_CHECKING:
    from .driver import ExperimentDriver

log = logging.getLogger(__name__)

Work = list[tuple[AttackSetting, int]]  # (run, index into the model's eligible images)


def _limit(spec: ModelSpec, run: AttackSetting, n: int) -> int:
    """How many of the n eligible images ``run`` attacks on the model of ``spec``."""
    cap = n if spec.max_images is None else spec.max_images
    return min(n, cap, run.first or n)


def _groups(runs: list[AttackSetting]) -> list[list[AttackSetting]]:
    """Runs that can share one attack call: the same attack, options and budget rule."""
    out: dict[tuple[str, ...], list[AttackSetting]] = {}
    for run in runs:
        sig = (run.attack, repr(sorted(run.params.items())), str(run.budget_from), run.budget_rule)
        out.setdefault(sig, []).append(run)
    return list(out.values())


def median_budget(runner: ExperimentDriver, part: Part, model: str, run: AttackSetting) -> float:
    """The median L2 of ``run.budget_from`` over the images it fooled on ``model``."""
    recs = runner.store.select(
        experiment=runner.cfg.name, part=part.name, model=model, attack_key=run.budget_from
    )
    values = [r["l2"] for r in recs if r.get("success") and isinstance(r.get("l2"), float)]
    if not values:
        raise ValueError(
            f"{run.key}: no successful {run.budget_from} record of {model} to take the median "
            "L2 budget from (its phase must run first)"
        )
    return statistics.median(values)


def check_same_images(
    status: Path, exp: str, part: str, info: dict[str, Any], store: ResultStore
) -> None:
    """Refuse to resume a staged part whose eligible images (and so its first images of every
    stage) differ from those of the records already written (another n, seed, data or model
    list)."""
    before = part_status(status, exp, part).get("eligible_ids")
    if before is None or before == info["eligible_ids"]:
        return
    if store.select(experiment=exp, part=part):
        raise ValueError(
            f"{store.dir}: the {exp}/{part} records were made on {len(before)} eligible images, "
            f"this run has {len(info['eligible_ids'])} other ones (another n, seed, data or "
            "model list): its stages would mix them. Choose another output folder"
        )


class PairedRuns:
    """Runs the phases of one part for the models of a ``ExperimentDriver``."""

    def __init__(
        self,
        runner: ExperimentDriver,
        part: Part,
        models: dict[str, nn.Module],
        datas: dict[str, Dataset],
        on_stage: Callable[[], object] | None = None,
    ) -> None:
        if runner.dist.active:
            raise ValueError("the paired experiment kind runs in one process, not under torchrun")
        self.runner, self.part, self.models, self.datas = runner, part, models, datas
        self.specs = {m.name: m for m in part.models}
        self.on_stage = on_stage or (lambda: None)
        self._budget: dict[tuple[str, str], float] = {}
        self._per_image: dict[tuple[str, str], torch.Tensor] = {}
        self._mask_cache: dict[tuple[str, str], torch.Tensor | None] = {}

    def _keys(self, name: str, run: AttackSetting) -> list[str]:
        data = self.datas[name]
        return [self.runner._key(self.part, name, run.key, run.setting(), i) for i in data.ids]

    def _budgets(self, name: str, run: AttackSetting) -> torch.Tensor:
        """The L2 budget of a run for each of the model's eligible images (N,): the median of
        ``budget_from`` (``_budget_of``) or each image's own L2 in it (NaN without a
        record: such images are not attacked); computed once per model and run, when its phase
        starts (after ``budget_from``'s)."""
        if (name, run.key) in self._per_image:
            return self._per_image[(name, run.key)]
        data = self.datas[name]
        if run.budget_rule == "median":
            return torch.full((len(data),), self._budget_of(name, run))
        ref = {
            r["id"]: r["l2"]
            for r in self.runner.store.select(
                experiment=self.runner.cfg.name,
                part=self.part.name,
                model=name,
                attack_key=run.budget_from,
            )
            if isinstance(r.get("l2"), float)
        }
        budgets = torch.tensor([ref.get(i, float("nan")) for i in data.ids], dtype=torch.float32)
        self._per_image[(name, run.key)] = budgets
        return budgets

    def _budget_of(self, name: str, run: AttackSetting) -> float:
        """The median budget of a run (computed once per model and checked against the
        records already written: a changed budget is refused, not mixed)."""
        if (name, run.key) not in self._budget:
            eps = median_budget(self.runner, self.part, name, run)
            for r in self.runner.store.select(
                experiment=self.runner.cfg.name, part=self.part.name, model=name, attack_key=run.key
            ):
                if abs(r.get("budget_l2", eps) - eps) > 1e-6 * max(1.0, eps):
                    raise ValueError(
                        f"{self.runner.store.dir}: {run.key} records of {name} used the L2 "
                        f"budget {r['budget_l2']:.6g}, the median of {run.budget_from} is now "
                        f"{eps:.6g}: its records changed. Choose another output folder"
                    )
            self._budget[(name, run.key)] = eps
        return self._budget[(name, run.key)]

    def run(self) -> None:
        for phase in sorted({r.phase for r in self.part.runs}):
            runs = [r for r in self.part.runs if r.phase == phase]
            start = 0
            for bound in (*self.part.stages, None):
                for name in self.models:
                    self._stage(name, runs, start, bound)
                self._stage_done()
                if bound is None:
                    break
                start = bound

    def _stage_done(self) -> None:
        """The end of a stage: the records so far are packed (``on_stage``)."""
        self.on_stage()

    def _todo(self, name: str, runs: list[AttackSetting], start: int, bound: int | None) -> Work:
        n = len(self.datas[name])
        work: Work = []
        for run in runs:
            keys = self._keys(name, run)
            hi = _limit(self.specs[name], run, n)
            hi = hi if bound is None else min(hi, bound)
            todo = [j for j in range(start, hi) if keys[j] not in self.runner.store]
            if run.budget_from and run.budget_rule == "per-image" and todo:
                budgets = self._budgets(name, run)
                todo = [j for j in todo if torch.isfinite(budgets[j])]
            work += [(run, j) for j in todo]
        return work

    def _stage(self, name: str, runs: list[AttackSetting], start: int, bound: int | None) -> None:
        work = self._todo(name, runs, start, bound)
        if not work:
            return
        data, model = self.datas[name], self.models[name]
        for run in {r.key: r for r, _ in work}.values():
            check_partners(self.runner.store, self.runner.cfg.name, self.part.name, name, run, data)
        desc = f"{self.runner.cfg.name}/{self.part.name}/{name} [{start}, {bound or 'end'})"
        bar = tqdm(
            total=len(work), desc=desc, unit="region", dynamic_ncols=True, disable=self.runner.quiet
        )
        try:
            for group in _groups(runs):
                keys = {r.key for r in group}
                mine = [(r, j) for r, j in work if r.key in keys]
                for chunk in self._chunks(mine):
                    self._attack(name, model, data, chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()

    def _chunks(self, work: Work) -> Iterator[Work]:
        """Image-major chunks of at most the part's batch size: all regions of an image in
        the same chunk where they fit."""
        work = sorted(work, key=lambda rj: rj[1])
        bs = self.part.data.batch_size
        for i in range(0, len(work), bs):
            yield work[i : i + bs]

    def _masks(self, name: str, run: AttackSetting, data: Dataset) -> torch.Tensor | None:
        """The run's region (bool) for the model's eligible images, computed once (SmoothGrad,
        costly, only for the images the run attacks)."""
        if (name, run.key) not in self._mask_cache:
            limit = _limit(self.specs[name], run, len(data))
            regions, model = self.runner._regions, self.models[name]
            if run.mask_source == "smoothgrad" and limit < len(data):
                sub = data.subset(list(range(limit)))
                m = regions.masks(self.part, f"{name}[:{limit}]", model, run, sub)
            else:
                m = regions.masks(self.part, name, model, run, data)
            self._mask_cache[(name, run.key)] = None if m is None else m.bool()
        return self._mask_cache[(name, run.key)]

    def _attack(self, name: str, model: nn.Module, data: Dataset, chunk: Work) -> None:
        run0 = chunk[0][0]
        rows = [j for _, j in chunk]
        extra: dict[str, Any] = {}
        if run0.budget_from:
            extra["eps"] = torch.stack([self._budgets(name, r)[j] for r, j in chunk])
        masks = [self._masks(name, r, data) for r, _ in chunk]
        mask = None
        if any(m is not None for m in masks):
            full = torch.ones_like(data.images[:1, :1])
            mask = torch.stack(
                [full[0] if m is None else m[j].float() for m, (_, j) in zip(masks, chunk)]
            )
        attack = self.runner._build(run0, model, self.part, **extra)
        ids = [data.ids[j] for j in rows]
        t0 = time.perf_counter()
        res = attack.run(data.images[rows], data.labels[rows], mask=mask, ids=ids)
        dt = (time.perf_counter() - t0) / len(chunk)
        records = []
        for run in {r.key: r for r, _ in chunk}.values():
            at = [i for i, (r, _) in enumerate(chunk) if r.key == run.key]
            js = [chunk[i][1] for i in at]
            budget = self._budgets(name, run) if run.budget_from else None
            rows_of = self.runner._rows(
                self.part,
                name,
                run,
                self._keys(name, run),
                js,
                [data.ids[j] for j in js],
                res.subset(at),
                dt,
                budget,
            )
            if run.mask_source == "shuffled-fcr":
                partner = partners(data)
                for row in rows_of:
                    row["mask_partner"] = partner[row["id"]]
            for row in rows_of:
                row["stage_batch"] = len(chunk)
            records += rows_of
        self.runner.store.append(records)
