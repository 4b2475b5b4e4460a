"""Reading an output folder of ``fcrattack reproduce`` for the report sections: records,
configs, status and the paper's numbers, with the aggregates every section uses."""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ...base.store import ResultStore
from ...metrics import summarize_records
from ...viz.document import diff, fmt_interval, rate
from .saved_form import record_problem, status_problem
from .spec import UNNAMED, AttackSetting, upgrade

log = logging.getLogger(__name__)


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
    """The 95 % interval (lo, hi) of ``agg[key]`` (``fcrattack.metrics.summarize_records``),
    or None."""
    if agg is None or f"{key}_lo" not in agg:
        return None
    return agg[f"{key}_lo"], agg[f"{key}_hi"]


def asr_diff(agg: dict[str, float] | None, paper: float | None) -> str:
    """Our ASR minus the paper's (in percentage points, the paper's unit), with our interval
    (``fcrattack.viz.document.diff``)."""
    if agg is None:
        return diff(None, paper, None)
    return diff(100 * agg["asr"], paper, (100 * agg["asr_lo"], 100 * agg["asr_hi"]))


def mean_cell(agg: dict[str, float] | None, key: str, digits: int = 2) -> str:
    """'0.256 [0.231, 0.281]': an aggregate's mean with its bootstrap interval."""
    return fmt_interval(val(agg, key), ci(agg, key), digits)


def ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or not finite, or den is 0."""
    if num is None or not den or not (math.isfinite(num) and math.isfinite(den)):
        return None
    return num / den


class Results:
    """Records, configs and status of an output folder, grouped for the sections."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.config = self._json("config.json", by_experiment=True)
        self.status = self._json("status.json", by_experiment=True)
        for exp, status in self.status.items():
            problem = status_problem(status)
            if problem:
                raise ValueError(
                    f"{self.dir / 'status.json'}: {exp}: {problem}: it is not as reproduce "
                    "wrote it; restore it from a copy, or rerun"
                )
        self.env = self._json("env.json")
        self.paper = paper_numbers()
        self.groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in ResultStore.records_of(self.dir, upgrade):
            problem = record_problem(r)
            if problem:
                raise ValueError(
                    f"{self.dir}: record {str(r.get('key'))[:200]!r} is not one fcrattack "
                    f"reproduce writes ({problem}): restore the records from a copy, or rerun"
                )
            self.groups[(r["experiment"], r["part"], r["model"], r["attack_key"])].append(r)
        unknown = sorted({e for e, *_ in self.groups} - set(self.config))
        if unknown:
            log.warning(
                "%s: leaving out the records of experiments config.json does not hold: %s",
                self.dir,
                ", ".join(repr(e[:40]) for e in unknown[:5]),
            )

    def _json(self, name: str, *, by_experiment: bool = False) -> dict[str, Any]:
        """The JSON object of the file ``name`` ({} without it; ``by_experiment``: one object
        per experiment); a ValueError naming the file when it is not one."""
        path = self.dir / name
        if not path.is_file():
            return {}
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueError(f"{path} is not a JSON file of fcrattack reproduce ({exc})") from None
        if not isinstance(found, dict) or (
            by_experiment and not all(isinstance(v, dict) for v in found.values())
        ):
            raise ValueError(f"{path} is not a JSON object of the form reproduce writes")
        return found

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
                    return AttackSetting(
                        **{k: v for k, v in run.items() if k in AttackSetting.__dataclass_fields__}
                    ).setting()
        return None

    def parts(self, exp: str) -> list[dict[str, Any]]:
        return list(self.config.get(exp, {}).get("parts", []))

    def part_status(self, exp: str, part: str) -> dict[str, Any]:
        return dict(self.status.get(exp, {}).get("parts", {}).get(part, {}))

    def cell(
        self, exp: str, part: str, model: str, run: dict[str, Any]
    ) -> tuple[dict[str, float] | None, str]:
        """(aggregate or None, text): the rate, or "not run"; a cell with fewer records than
        the images it attacks (the part's eligible ones, up to the model's ``max_images`` and
        the run's ``first``) says how many it holds."""
        recs = self.get(exp, part, model, run["key"])
        if not recs:
            return None, "not run"
        a = summarize_records(recs)
        text = rate(int(a["n_success"]), int(a["n"]))
        expected = len(self.part_status(exp, part).get("eligible_ids", []))
        spec: dict[str, Any] = next(
            (m for p in self.parts(exp) for m in p["models"] if m["name"] == model), {}
        )
        for cap in (spec.get("max_images"), run.get("first")):
            expected = min(expected, cap) if cap else expected
        if len(recs) < expected:
            text += f" (records of {len(recs)} of the {expected} images)"
        return a, text

    def scale_note(self, exp: str, part: dict[str, Any]) -> str:
        """One sentence on the scale of a part: images drawn and attacked, models, scale.
        Models with ``max_images`` attack at most that many of the eligible images (0: they
        only select the images)."""
        st = self.part_status(exp, part["data"]["dataset"])
        n = st.get("n_eligible", "?")
        attacked = [m for m in part["models"] if m.get("max_images") != 0]
        models = "; ".join(model_label(m) for m in attacked)
        caps = [
            f"{min(m['max_images'], n) if isinstance(n, int) else m['max_images']} on {m['label']}"
            for m in attacked
            if m.get("max_images")
        ]
        selectors = [m["label"] for m in part["models"] if m.get("max_images") == 0]
        correct = (
            f"classified correctly by every model ({', '.join(m['label'] for m in part['models'])})"
        )
        which = (
            f"n = {n} {correct}, of which the first {', '.join(caps)} are attacked"
            if caps
            else f"n = {n} {correct} and attacked"
        )
        sel = f"; {', '.join(selectors)} only selects the images" if selectors else ""
        return (
            f"Scale: {part['data']['dataset']}, {st.get('n_drawn', '?')} images drawn "
            f"(seed {part['data']['seed']}), {which}; models: {models}{sel}; scale "
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


#: the columns of a sweep table (Fig. 4 and 5)
SWEEP_HEADERS = ["setting", "ASR (ours)", "L2 [0,1]", "L0 values", "PSNR_255"]


def param(key: str, run: dict[str, Any]) -> float:
    """The value of parameter ``key`` of a run (as saved in config.json)."""
    return float(run["params"][key])


def sweep_rows(
    res: Results,
    exp: str,
    part: dict[str, Any],
    prefix: str,
    value: Callable[[dict[str, Any]], float],
) -> tuple[list[list[str]], list[float], list[float], list[dict[str, float]]]:
    """Table rows, x values, ASRs and aggregates of the runs whose key starts with ``prefix``."""
    pname, m = part["data"]["dataset"], part["models"][0]
    rows, xs, ys, aggs = [], [], [], []
    for run in part["runs"]:
        if not run["key"].startswith(prefix):
            continue
        a, txt = res.cell(exp, pname, m["name"], run)
        x = value(run)
        rows.append(
            [
                run["label"],
                txt,
                mean_cell(a, "l2", 3),
                mean_cell(a, "l0", 0),
                mean_cell(a, "psnr_255"),
            ]
        )
        if a is not None:
            xs.append(x)
            ys.append(100 * a["asr"])
            aggs.append(a)
    return rows, xs, ys, aggs
