"""Reading an output folder of ``fcrattack reproduce`` for the report sections: records,
configs, status and the paper's numbers, with the aggregates every section uses."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..metrics import summarize
from ..store import ResultStore
from ..viz.document import fmt_interval, rate
from .spec import UNNAMED, AttackRun

NORMS = ("l2", "l2_255", "linf", "linf_255", "l0", "l0_pixels", "psnr", "psnr_255")


def paper_numbers() -> dict[str, Any]:
    """The paper's reported numbers shipped with the package (``paperdata/paper.json``)."""
    ref = resources.files("fcrattack") / "paperdata" / "paper.json"
    return json.loads(ref.read_text(encoding="utf-8"))


def finite(value: Any) -> bool:
    """Whether a record's value is a finite number (non-finite ones are stored as null)."""
    return isinstance(value, (int, float)) and math.isfinite(value)


def mean_of(values: Sequence[float]) -> float | None:
    """The mean, or None for no values."""
    return sum(values) / len(values) if values else None


def mean(records: list[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over all records that have a finite value (not only the successful
    ones); None when there is none."""
    return mean_of([r[key] for r in records if finite(r.get(key))])


def val(agg: dict[str, float] | None, key: str) -> float | None:
    """``agg[key]``, or None without an aggregate."""
    return None if agg is None else agg[key]


def ci(agg: dict[str, float] | None, key: str) -> tuple[float, float] | None:
    """The 95 % interval (lo, hi) of ``agg[key]`` (see ``aggregate``), or None."""
    if agg is None or f"{key}_lo" not in agg:
        return None
    return agg[f"{key}_lo"], agg[f"{key}_hi"]


def mean_cell(agg: dict[str, float] | None, key: str, digits: int = 2) -> str:
    """'0.256 [0.231, 0.281]': an aggregate's mean with its bootstrap interval."""
    return fmt_interval(val(agg, key), ci(agg, key), digits)


def ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or not finite, or den is 0."""
    if num is None or not den or not (math.isfinite(num) and math.isfinite(den)):
        return None
    return num / den


def aggregate(records: list[dict[str, Any]]) -> dict[str, float]:
    """``fcrattack.metrics.summarize`` of records: n, n_success, ASR (in %), mean norms
    over the successful records, each with its 95 % interval (``<key>_lo``, ``<key>_hi``);
    and the mean time per image."""
    success = torch.tensor([bool(r.get("success")) for r in records], dtype=torch.bool)
    norms = {
        k: torch.tensor(
            [r[k] if finite(r.get(k)) else math.nan for r in records], dtype=torch.float64
        )
        for k in NORMS
    }
    out = summarize(norms, success)
    for k in ("asr", "asr_lo", "asr_hi"):
        out[k] *= 100
    time_s = mean(records, "time_s")
    out["time_s"] = math.nan if time_s is None else time_s
    return out


class Results:
    """Records, configs and status of an output folder, grouped for the sections."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.config = self._json("config.json")
        self.status = self._json("status.json")
        self.env = self._json("env.json")
        self.paper = paper_numbers()
        self.groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in ResultStore.records_of(self.dir):
            self.groups[(r["experiment"], r["part"], r["model"], r["attack"])].append(r)

    def _json(self, name: str) -> dict[str, Any]:
        path = self.dir / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def scale(self, exp: str) -> str:
        """The scale an experiment ran at."""
        return str(self.config.get(exp, {}).get("scale", "?"))

    def get(self, exp: str, part: str, model: str, attack: str) -> list[dict[str, Any]]:
        """Records of (exp, part, model, attack) over the current eligible images only."""
        eligible = set(self.part_status(exp, part).get("eligible_ids", []))
        setting = self.setting(exp, part, attack)
        return [
            r
            for r in self.groups.get((exp, part, model, attack), [])
            if r["id"] in eligible and (setting is None or r["setting"] == setting)
        ]

    def setting(self, exp: str, part: str, attack: str) -> str | None:
        """The setting string the current config gives ``attack`` (records from another
        scale or config version are left out)."""
        for p in self.parts(exp):
            if p["data"]["dataset"] != part:
                continue
            for run in p["runs"]:
                if run["key"] == attack:
                    return AttackRun(
                        **{k: v for k, v in run.items() if k in AttackRun.__dataclass_fields__}
                    ).setting()
        return None

    def parts(self, exp: str) -> list[dict[str, Any]]:
        return list(self.config.get(exp, {}).get("parts", []))

    def part_status(self, exp: str, part: str) -> dict[str, Any]:
        return dict(self.status.get(exp, {}).get("parts", {}).get(part, {}))

    def cell(
        self, exp: str, part: str, model: str, run: dict[str, Any]
    ) -> tuple[dict[str, float] | None, str]:
        """(aggregate or None, text): the rate, or "not run"."""
        recs = self.get(exp, part, model, run["key"])
        if not recs:
            return None, "not run"
        a = aggregate(recs)
        return a, rate(int(a["n_success"]), int(a["n"]))

    def scale_note(self, exp: str, part: dict[str, Any]) -> str:
        """One sentence on the scale of a part: images drawn and attacked, models, scale."""
        st = self.part_status(exp, part["data"]["dataset"])
        models = "; ".join(model_label(m) for m in part["models"])
        return (
            f"Scale: {part['data']['dataset']}, {st.get('n_drawn', '?')} images drawn "
            f"(seed {part['data']['seed']}), n = {st.get('n_eligible', '?')} classified "
            f"correctly by every model and attacked; models: {models}; scale "
            f"{self.scale(exp)}."
        )

    def notes(self, exp: str) -> list[str]:
        """The config's notes, as a list of zero or one paragraph."""
        text = self.config.get(exp, {}).get("notes")
        return [text] if text else []


def model_label(spec: dict[str, Any]) -> str:
    """ "ResNet-20 for ResNet-20", or the model alone where the paper names none."""
    if spec["stands_for"] == UNNAMED:
        return f"{spec['label']} (the paper does not name its model)"
    return f"{spec['label']} for {spec['stands_for']}"
