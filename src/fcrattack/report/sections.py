"""One report section per experiment: our numbers beside the paper's, with the difference,
the denominator of every rate and the metric conventions."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from ..experiments.config import AttackRun
from ..experiments.store import read_records
from . import figures
from .document import Block, Table

NORMS = ("l2", "l2_255", "linf", "linf_255", "l0", "l0_pixels", "psnr", "psnr_255")

CONVENTIONS = (
    "Conventions: ASR = successful / attacked, over the images that every model of the "
    "experiment classifies correctly (the denominator n is given with every rate). Norms are "
    "means over the successful images. L2 and Linf are on [0, 1] pixels and, marked 255, on "
    "[0, 255] pixels; L0 counts changed values (of C*H*W) and 'L0 px' changed pixels. PSNR "
    "uses MAX = 1 on [0, 1] images; PSNR_255 applies MAX = 255 to the MSE of [0, 1] images "
    "(PSNR + 48.13 dB), the convention the paper's PSNR column matches. The paper's L2 values "
    "fit neither scale exactly (e.g. PGD at Linf 16/255 cannot exceed L2 = 3.48 on a CIFAR "
    "image in [0, 1]); compare their ratios, not their values. Differences (diff) are ours "
    "minus the paper's, in points.")


def paper_numbers() -> dict[str, Any]:
    """The paper's reported numbers shipped with the package (``paperdata/paper.json``)."""
    ref = resources.files("fcrattack") / "paperdata" / "paper.json"
    return json.loads(ref.read_text(encoding="utf-8"))


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def diff(ours: float | None, paper: float | None) -> str:
    if ours is None or paper is None or not math.isfinite(ours):
        return "-"
    return f"{ours - paper:+.2f}"


def aggregate(records: list[dict[str, Any]]) -> dict[str, float]:
    """n, n_success, ASR (%), mean norms over the successful records, mean time per image."""
    n = len(records)
    ok = [r for r in records if r.get("success")]
    out: dict[str, float] = {"n": n, "n_success": len(ok),
                             "asr": 100 * len(ok) / n if n else float("nan")}
    for k in NORMS:
        vals = [r[k] for r in ok if k in r and math.isfinite(r[k])]
        out[k] = sum(vals) / len(vals) if vals else float("nan")
    times = [r["time_s"] for r in records if "time_s" in r]
    out["time_s"] = sum(times) / len(times) if times else float("nan")
    return out


def rate(count: int, n: int) -> str:
    """'87.50 % (35/40)'."""
    return f"{100 * count / n:.2f} % ({count}/{n})" if n else "- (0/0)"


class Results:
    """Records, configs and status of an output folder, grouped for the sections."""

    def __init__(self, out_dir: str | Path) -> None:
        self.dir = Path(out_dir)
        self.config = self._json("config.json")
        self.status = self._json("status.json")
        self.env = self._json("env.json")
        self.paper = paper_numbers()
        self.groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
        for r in read_records(self.dir / "records.jsonl"):
            self.groups[(r["experiment"], r["part"], r["model"], r["attack"])].append(r)

    def _json(self, name: str) -> dict[str, Any]:
        path = self.dir / name
        return json.loads(path.read_text()) if path.is_file() else {}

    def get(self, exp: str, part: str, model: str, attack: str) -> list[dict[str, Any]]:
        """Records of (exp, part, model, attack) over the current eligible images only."""
        eligible = set(self.status.get(exp, {}).get("parts", {}).get(part, {})
                       .get("eligible_ids", []))
        setting = self.setting(exp, part, attack)
        return [r for r in self.groups.get((exp, part, model, attack), [])
                if r["id"] in eligible and (setting is None or r["setting"] == setting)]

    def setting(self, exp: str, part: str, attack: str) -> str | None:
        """The setting string the current config gives ``attack`` (records from another
        preset or config version are left out)."""
        for p in self.config.get(exp, {}).get("parts", []):
            if p["data"]["dataset"] != part:
                continue
            for run in p["runs"]:
                if run["key"] == attack:
                    return AttackRun(**run).setting()
        return None

    def parts(self, exp: str) -> list[dict[str, Any]]:
        return self.config.get(exp, {}).get("parts", [])

    def part_status(self, exp: str, part: str) -> dict[str, Any]:
        return self.status.get(exp, {}).get("parts", {}).get(part, {})

    def skipped(self, exp: str, part: str, model: str, run: str) -> str | None:
        for s in self.status.get(exp, {}).get("skipped", []):
            if (s["part"], s["model"], s["run"]) == (part, model, run):
                return s["reason"]
        return None


def model_label(spec: dict[str, Any]) -> str:
    return f"{spec['label']} for {spec['stands_for']}"


def scale_note(res: Results, exp: str, part: dict[str, Any]) -> str:
    st = res.part_status(exp, part["data"]["dataset"])
    models = "; ".join(model_label(m) for m in part["models"])
    return (f"Scale: {part['data']['dataset']}, {st.get('n_drawn', '?')} images drawn "
            f"(seed {part['data']['seed']}), n = {st.get('n_eligible', '?')} classified "
            f"correctly by every model and attacked; models: {models}; preset "
            f"{res.config[exp]['preset']}.")


def _cell(res: Results, exp: str, part: str, model: str, run: dict[str, Any],
          digits: int = 2) -> tuple[dict[str, float] | None, str]:
    """(aggregate or None, text): 'not available' with the reason for skipped runs."""
    reason = res.skipped(exp, part, model, run["key"])
    recs = res.get(exp, part, model, run["key"])
    if not recs:
        return None, f"not available ({reason})" if reason else "not run"
    a = aggregate(recs)
    return a, rate(a["n_success"], a["n"])


# --- sections ------------------------------------------------------------------------------
def importance(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    claim = res.paper["fcr_importance"]["cifar10"]
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        rows, groups, bars = [], [], {"FCR-only": [], "non-FCR-only": []}
        for m in part["models"]:
            recs = res.get(exp, pname, m["name"], "importance")
            n = len(recs)
            fcr = sum(r["correct_fcr"] for r in recs)
            non = sum(r["correct_nonfcr"] for r in recs)
            area = sum(r["mask_fraction"] for r in recs) / n if n else float("nan")
            rows.append([model_label(m), str(n), rate(fcr, n), rate(non, n),
                         f">= {claim['fcr_only_accuracy_min']:g} %", "very low", fmt(area, 3)])
            groups.append(m["label"])
            bars["FCR-only"].append(100 * fcr / n if n else 0.0)
            bars["non-FCR-only"].append(100 * non / n if n else 0.0)
        t = res.config[exp]["t"]
        blocks.append(Block("table", table=Table(
            ["model", "n", "acc. FCR-only x*mask (ours)", "acc. non-FCR-only x*(1-mask) (ours)",
             "paper FCR-only", "paper non-FCR-only", "mean FCR area"], rows,
            [scale_note(res, exp, part), f"Threshold t = {t}; Grad-CAM of the true class; "
             "accuracy over the n images every model classifies correctly (100 % on the "
             f"clean images by construction). Paper: {claim['claim']}."])))
        png = figures.bar_plot(figdir / f"{exp}-{pname}.png", f"Fig. 2: accuracy, t = {t}",
                               groups, bars, "accuracy (%)",
                               hline=claim["fcr_only_accuracy_min"])
        blocks.append(Block("img", f"Fig. 2 ({pname}): accuracy on FCR-only and non-FCR-only "
                            "inputs", src=f"{figdir.name}/{png.name}"))
    return blocks


def whitebox(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        st = res.part_status(exp, pname)
        p_asr = res.paper["whitebox"].get(pname, {})
        p_clean = res.paper["clean_accuracy"].get(pname, {})
        p_same = res.paper["whitebox_same_l2"].get(pname, {})
        runs = {r["key"]: r for r in part["runs"]}
        rows = []
        for m in part["models"]:
            ms = st.get("models", {}).get(m["name"], {})
            clean = ms.get("clean_accuracy")
            clean_txt = (f"{100 * clean:.2f} % ({ms['clean_correct']}/{st['n_drawn']})"
                         if clean is not None else "-")
            paper_clean = p_clean.get(m["stands_for"])
            fcr, fcr_txt = _cell(res, exp, pname, m["name"], runs["fcr"])
            paper_fcr = p_asr.get(m["stands_for"])
            row = [model_label(m), clean_txt, fmt(paper_clean),
                   diff(100 * clean if clean is not None else None, paper_clean),
                   fcr_txt, fmt(paper_fcr), diff(fcr and fcr["asr"], paper_fcr),
                   fmt(fcr and fcr["l2"], 3)]
            for key, paper_key in (("pgdl2-at-fcr-l2", "PGD"), ("cw-at-fcr-l2", "C&W")):
                a, txt = _cell(res, exp, pname, m["name"], runs[key])
                row += [txt, fmt(p_same.get(paper_key)), diff(a and a["asr"],
                                                              p_same.get(paper_key))]
            if "fcr-ddn" in runs:
                a, txt = _cell(res, exp, pname, m["name"], runs["fcr-ddn"])
                row += [txt, fmt(a and a["l2"], 3)]
            rows.append(row)
        headers = ["model", "clean acc. (ours, of drawn)", "paper", "diff", "FCR ASR (ours)",
                   "paper", "diff", "FCR L2 [0,1]", "PGD-L2 @ FCR L2 (ours)", "paper", "diff",
                   "C&W @ FCR L2 (ours)", "paper", "diff"]
        if "fcr-ddn" in runs:
            headers += ["FCR-DDN ASR (extra)", "FCR-DDN L2 [0,1]"]
        blocks.append(Block("table", table=Table(headers, rows, [
            scale_note(res, exp, part),
            "Clean accuracy is over all drawn images; ASR over the n attacked images. Same-L2 "
            "rows: PGD-L2 and C&W with a per-image L2 budget equal to the L2 FCR reached on "
            "that image (the paper's numbers are per data set). FCR uses the paper's "
            "hyper-parameters (literal J_T, last iterate)."])))
    return blocks


def comparison(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        paper = res.paper["comparison"].get(pname, {})
        m = part["models"][0]
        rows = []
        for run in part["runs"]:
            a, txt = _cell(res, exp, pname, m["name"], run)
            p = paper.get("rows", {}).get(run.get("paper_row") or "", {}) \
                if not run.get("budget_from") else {}
            rows.append([run["label"], txt, fmt(p.get("asr")), diff(a and a["asr"], p.get("asr")),
                         fmt(a and a["psnr"]), fmt(a and a["psnr_255"]), fmt(p.get("psnr")),
                         diff(a and a["psnr_255"], p.get("psnr")),
                         fmt(a and a["l2"], 3), fmt(a and a["l2_255"]), fmt(p.get("l2")),
                         fmt(a and a["l0"], 0), fmt(a and a["l0_pixels"], 0),
                         fmt(a and a["linf"], 4), fmt(a and a["linf_255"], 1),
                         fmt(a and a["time_s"], 3)])
        blocks.append(Block("table", table=Table(
            ["attack", "ASR (ours)", "paper", "diff", "PSNR (MAX=1)", "PSNR_255", "paper PSNR",
             "diff (PSNR_255)", "L2 [0,1]", "L2 [0,255]", "paper L2", "L0 values", "L0 px",
             "Linf [0,1]", "Linf [0,255]", "s / image"], rows,
            [scale_note(res, exp, part), f"Paper's model: {paper.get('model', '?')}. Ours: "
             f"{model_label(m)}. The paper reports ASR, PSNR and L2 only."])))
    return blocks


def masked_fgsm(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        paper = res.paper["masked_fgsm"].get(pname, {})
        rows = []
        for m in part["models"]:
            table = {(e1, e2): v for e1, e2, v in paper.get(m["stands_for"], [])}
            for run in part["runs"]:
                a, txt = _cell(res, exp, pname, m["name"], run)
                e1, e2 = run["params"]["eps1"], run["params"]["eps2"]
                p = table.get((e1, e2))
                rows.append([model_label(m), f"{e1:.2f}", f"{e2:.2f}", txt, fmt(p),
                             diff(a and a["asr"], p), fmt(a and a["l2"], 3)])
        blocks.append(Block("table", table=Table(
            ["model", "eps1 (FCR)", "eps2 (non-FCR)", "ASR (ours)", "paper", "diff",
             "L2 [0,1]"], rows,
            [scale_note(res, exp, part), "eps on [0, 1] pixels (Linf); '-' in the paper "
             "column: the paper has no such cell for that model."])))
    return blocks


def transfer(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        paper = res.paper["transfer"].get(pname, {})
        models = part["models"]
        rows = []
        for src in models:
            for run in part["runs"]:
                recs = res.get(exp, pname, src["name"], run["key"])
                reason = res.skipped(exp, pname, src["name"], run["key"])
                cells = [f"{src['label']} ({src['stands_for']})", run["label"]]
                p_row = paper.get(src["stands_for"], {}).get(run.get("paper_row") or "", {})
                for tgt in models:
                    n = len(recs)
                    if not n:
                        cells.append(f"n/a ({reason})" if reason else "not run")
                        continue
                    k = sum(r["transfer"][tgt["name"]] for r in recs)
                    p = p_row.get(tgt["stands_for"])
                    cells.append(f"{100 * k / n:.1f} (paper {fmt(p)}, diff {diff(100 * k / n, p)})")
                rows.append(cells)
        n = res.part_status(exp, pname).get("n_eligible", "?")
        blocks.append(Block("table", table=Table(
            ["source", "attack"] + [f"-> {t['label']} ({t['stands_for']})" for t in models],
            rows, [scale_note(res, exp, part),
                   f"ASR (%) on each target of the adversarial examples crafted once on the "
                   f"source, over n = {n} images every model classifies correctly; the "
                   "diagonal is white-box. Paper cells are those of the model each of ours "
                   "stands for."])))
    if res.config[exp].get("notes"):
        blocks.append(Block("p", res.config[exp]["notes"]))
    return blocks


def _sweep_rows(res: Results, exp: str, part: dict[str, Any], prefix: str,
                value) -> tuple[list[list[str]], list[float], list[float], list[dict]]:
    pname, m = part["data"]["dataset"], part["models"][0]
    rows, xs, ys, aggs = [], [], [], []
    for run in part["runs"]:
        if not run["key"].startswith(prefix):
            continue
        a, txt = _cell(res, exp, pname, m["name"], run)
        x = value(run)
        rows.append([run["label"], txt, fmt(a and a["l2"], 3), fmt(a and a["l0"], 0),
                     fmt(a and a["psnr_255"])])
        if a is not None:
            xs.append(x)
            ys.append(a["asr"])
            aggs.append(a)
    return rows, xs, ys, aggs


SWEEP_HEADERS = ["setting", "ASR (ours)", "L2 [0,1]", "L0 values", "PSNR_255"]


def sweep_steps(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    claim = res.paper["sweep_steps_temperature"]
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        for prefix, key, xlabel, log_x in (("fcr-steps-", "steps", "steps N", False),
                                           ("fcr-T-", "T", "inverse temperature T", True)):
            rows, xs, ys, _ = _sweep_rows(res, exp, part, prefix, lambda r: r["params"][key])
            paper_pts = []
            if key == "steps":
                pts = claim["asr_at_steps"].get(pname, {})
                paper_pts = [("ASR", [float(k) for k in pts], list(pts.values()))]
            png = figures.line_plot(figdir / f"{exp}-{pname}-{key}.png",
                                    f"Fig. 4 ({pname}): ASR vs {key}", xlabel, "ASR (%)",
                                    [("ours", xs, ys)], paper_pts, log_x=log_x)
            blocks.append(Block("table", table=Table(SWEEP_HEADERS, rows, [
                scale_note(res, exp, part), f"Paper ({claim['models'][pname]}): "
                f"{claim['claim']}."])))
            blocks.append(Block("img", f"ASR vs {key} ({pname})", src=f"{figdir.name}/{png.name}"))
    return blocks


def sweep_threshold(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    claim = res.paper["sweep_threshold"]
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        rows, xs, ys, aggs = _sweep_rows(res, exp, part, "fcr-t-", lambda r: r["params"]["t"])
        pts = claim.get(pname, {})
        for row in rows:
            p = pts.get(row[0].split("=")[-1], {})
            row += [fmt(p.get("asr")), fmt(p.get("l0"), 0)]
        blocks.append(Block("table", table=Table(SWEEP_HEADERS + ["paper ASR", "paper L0"],
                                                 rows, [scale_note(res, exp, part),
                                                        f"Paper: {claim['claim']}."])))
        paper_x = [float(k) for k in pts]
        png = figures.line_plot(figdir / f"{exp}-{pname}-asr.png", f"Fig. 5 ({pname}): ASR vs t",
                                "threshold t", "ASR (%)", [("ours", xs, ys)],
                                [("ASR", paper_x, [v["asr"] for v in pts.values()])])
        png0 = figures.line_plot(figdir / f"{exp}-{pname}-l0.png", f"Fig. 5 ({pname}): L0 vs t",
                                 "threshold t", "L0 (changed values)",
                                 [("ours", xs, [a["l0"] for a in aggs])],
                                 [("L0", paper_x, [v["l0"] for v in pts.values()])])
        blocks += [Block("img", f"ASR vs t ({pname})", src=f"{figdir.name}/{png.name}"),
                   Block("img", f"L0 vs t ({pname}); the paper's ImageNet L0 exceeds "
                         "3 x 224 x 224, so its image size is unclear",
                         src=f"{figdir.name}/{png0.name}")]
    return blocks


def visual(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for path in sorted((res.dir / "artifacts").glob("visual-*.pt")):
        art = torch.load(path, map_location="cpu", weights_only=True)
        png = figures.panel(figdir / f"{path.stem}.png", art,
                            f"{path.stem}: image, Grad-CAM, FCR, then perturbation (amplified) "
                            "and adversarial per attack")
        blocks.append(Block("img", f"Figs. 1/3 panel ({path.stem}); perturbations scaled to "
                            "their own maximum, grey = unchanged", src=f"{figdir.name}/{png.name}"))
    for part in res.parts(exp):
        blocks += comparison_like(res, exp, part)
    return blocks


def comparison_like(res: Results, exp: str, part: dict[str, Any]) -> list[Block]:
    """ASR and norms of the panel images, per run."""
    pname, m = part["data"]["dataset"], part["models"][0]
    rows = []
    for run in part["runs"]:
        a, txt = _cell(res, exp, pname, m["name"], run)
        rows.append([run["label"], txt, fmt(a and a["l2"], 3), fmt(a and a["linf_255"], 1),
                     fmt(a and a["l0"], 0), fmt(a and a["psnr_255"])])
    return [Block("table", table=Table(["attack", "ASR", "L2 [0,1]", "Linf [0,255]",
                                        "L0 values", "PSNR_255"], rows,
                                       [f"Panel images of {model_label(m)} ({pname})."]))]


# --- beyond the paper ---------------------------------------------------------------------
def _mean_of(vals: list[float]) -> float | None:
    return sum(vals) / len(vals) if vals else None


def _mean(recs: list[dict[str, Any]], key: str) -> float | None:
    """Mean of ``key`` over all records (not only the successful ones); None when empty."""
    return _mean_of([r[key] for r in recs if key in r])


def _ratio(num: float | None, den: float | None) -> float | None:
    """num / den, or None when either is missing or not finite, or den is 0."""
    if num is None or not den or not (math.isfinite(num) and math.isfinite(den)):
        return None
    return num / den


#: the project's targets for fcr-ddn at t = 0.2 in the region-tradeoff goal check
GOAL_T = 0.2
GOAL_ASR, GOAL_L2_CW, GOAL_L2_T0, GOAL_L0_CW = 99.0, 0.7, 1.25, 0.55


def _goal_rows(label: str, a: dict[str, float] | None, cw: dict[str, float] | None,
               base: dict[str, float] | None) -> list[list[str]]:
    """The goal check of fcr-ddn at t = GOAL_T (``a``) against C&W and fcr-ddn at t = 0."""
    def verdict(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "FAIL")

    if a is None:
        return [[label, "fcr-ddn at t = 0.2", "-", "not run", "n/a"]]
    l2_cw, l2_t0 = _ratio(a["l2"], cw and cw["l2"]), _ratio(a["l2"], base and base["l2"])
    l0_cw = _ratio(a["l0"], cw and cw["l0"])
    return [
        [label, "ASR", f">= {GOAL_ASR:g} %", rate(a["n_success"], a["n"]),
         verdict(a["asr"] >= GOAL_ASR)],
        [label, "mean L2 vs C&W", f"<= {GOAL_L2_CW:g} x",
         f"{fmt(a['l2'], 3)} = {fmt(l2_cw)} x C&W's {fmt(cw and cw['l2'], 3)}",
         verdict(None if l2_cw is None else l2_cw <= GOAL_L2_CW)],
        [label, "mean L2 vs fcr-ddn t = 0", f"<= {GOAL_L2_T0:g} x",
         f"{fmt(a['l2'], 3)} = {fmt(l2_t0)} x t = 0's {fmt(base and base['l2'], 3)}",
         verdict(None if l2_t0 is None else l2_t0 <= GOAL_L2_T0)],
        [label, "mean L0 vs C&W", f"<= {100 * GOAL_L0_CW:g} %",
         f"{fmt(a['l0'], 0)} = {fmt(l0_cw and 100 * l0_cw, 1)} % of C&W's "
         f"{fmt(cw and cw['l0'], 0)}", verdict(None if l0_cw is None else l0_cw <= GOAL_L0_CW)]]


def region_tradeoff(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname = part["data"]["dataset"]
        cw_run = next(r for r in part["runs"] if r["attack"] == "cw")
        ddn_runs = [r for r in part["runs"] if r["attack"] == "fcr-ddn"]
        rows, goals, l2s, l0s, ref_l2, ref_l0 = [], [], [], [], [], []
        for m in part["models"]:
            cw, cw_txt = _cell(res, exp, pname, m["name"], cw_run)
            cells = {r["params"]["t"]: _cell(res, exp, pname, m["name"], r) for r in ddn_runs}
            base = cells.get(0.0, (None, ""))[0]
            rows.append([model_label(m), cw_run["label"], cw_txt, fmt(cw and cw["l2"], 3),
                         fmt(cw and cw["l0"], 0), "1.00",
                         fmt(_ratio(cw and cw["l2"], base and base["l2"])), "100.0", "-"])
            ts, l2, l0 = [], [], []
            for run in ddn_runs:
                t = run["params"]["t"]
                a, txt = cells[t]
                l0_cw = _ratio(a and a["l0"], cw and cw["l0"])
                area = _mean(res.get(exp, pname, m["name"], run["key"]), "mask_fraction")
                rows.append([model_label(m), run["label"], txt, fmt(a and a["l2"], 3),
                             fmt(a and a["l0"], 0), fmt(_ratio(a and a["l2"], cw and cw["l2"])),
                             fmt(_ratio(a and a["l2"], base and base["l2"])),
                             fmt(l0_cw and 100 * l0_cw, 1), fmt(area, 3)])
                if a is not None:
                    ts.append(t)
                    l2.append(a["l2"])
                    l0.append(a["l0"])
            goals += _goal_rows(model_label(m), cells.get(GOAL_T, (None, ""))[0], cw, base)
            l2s.append((f"fcr-ddn, {m['label']}", ts, l2))
            l0s.append((f"fcr-ddn, {m['label']}", ts, l0))
            if cw is not None:
                ref_l2.append((f"C&W, {m['label']}", cw["l2"]))
                ref_l0.append((f"C&W, {m['label']}", cw["l0"]))
        steps = {r["params"]["steps"] for r in ddn_runs}
        blocks.append(Block("table", table=Table(
            ["model", "attack", "ASR", "mean L2 [0,1]", "mean L0 values", "L2 / C&W",
             "L2 / fcr-ddn t=0", "L0 % of C&W", "mean FCR area"], rows,
            [scale_note(res, exp, part), f"fcr-ddn: {'/'.join(map(str, sorted(steps)))} "
             "steps at every t (t = 0: the whole image, i.e. unrestricted DDN); C&W "
             f"{cw_run['params']['steps']} steps, c = 1, lr = 0.01, on the same images. Norms "
             "are means over the successful images (of 3 x 32 x 32 values)."])))
        n_pass = sum(g[-1] == "PASS" for g in goals)
        blocks.append(Block("table", table=Table(
            ["model", "goal at t = 0.2", "target", "measured", "result"], goals,
            [f"Goal check of fcr-ddn at t = {GOAL_T} against the project's targets, measured "
             f"without tuning: {n_pass} of {len(goals)} checks pass."])))
        png = figures.panels_plot(
            figdir / f"{exp}-{pname}.png", f"fcr-ddn vs threshold t ({pname})",
            "FCR threshold t (0 = whole image)",
            [("mean L2 [0,1] (successful images)", l2s, ref_l2),
             ("mean L0 (changed values)", l0s, ref_l0)])
        blocks.append(Block("img", f"Mean L2 and L0 of fcr-ddn against t ({pname}); dashed: "
                            "C&W at the paper's settings", src=f"{figdir.name}/{png.name}"))
    if res.config[exp].get("notes"):
        blocks.append(Block("p", res.config[exp]["notes"]))
    return blocks


def _fooled(recs: list[dict[str, Any]], target: str) -> int:
    return sum(r["transfer"][target] for r in recs)


def _conclusion(diffs: list[float], what: str, caveat: str | None = None) -> str:
    """'restricted higher in k of m cells ...' from the per-cell differences (points), with a
    verdict on the claim; with ``caveat`` (budgets differ) the caveat replaces the verdict."""
    if not diffs:
        return f"{what}: no cell to compare."
    hi, lo = sum(d > 0 for d in diffs), sum(d < 0 for d in diffs)
    mean = sum(diffs) / len(diffs)
    verdict = ("supports" if hi > lo and mean > 0 else
               "contradicts" if lo > hi and mean < 0 else "does not decide")
    text = (f"{what}: restricted higher in {hi} of {len(diffs)} cells, equal in "
            f"{len(diffs) - hi - lo}, lower in {lo}; mean difference {mean:+.2f} points. ")
    return text + (caveat or f"At equal L2 budgets this {verdict} the claim that "
                   "FCR-restricted perturbations transfer better.")


def transfer_equal_l2(res: Results, exp: str, figdir: Path) -> list[Block]:
    blocks: list[Block] = []
    for part in res.parts(exp):
        pname, models = part["data"]["dataset"], part["models"]
        pgd = {(r["params"]["eps"], r["mask_t"] is not None): r for r in part["runs"]
               if r["attack"] == "pgdl2"}
        ddn = {r["params"]["t"]: r for r in part["runs"] if r["attack"] == "fcr-ddn"}
        budgets = sorted({eps for eps, _ in pgd})
        rows, ddn_rows, diffs, ddn_diffs = [], [], [], []
        ddn_l2: dict[float, list[float]] = defaultdict(list)
        curves: dict[tuple[bool, bool], dict[float, list[float]]] = defaultdict(
            lambda: defaultdict(list))
        for src in models:
            for eps in budgets:
                recs = {r: res.get(exp, pname, src["name"], pgd[(eps, r)]["key"])
                        for r in (True, False)}
                if not (recs[True] and recs[False]):
                    continue
                for tgt in models:
                    white = tgt["name"] == src["name"]
                    k = {r: _fooled(recs[r], tgt["name"]) for r in recs}
                    d = 100 * (k[True] / len(recs[True]) - k[False] / len(recs[False]))
                    for r in recs:
                        curves[(r, white)][eps].append(100 * k[r] / len(recs[r]))
                    if not white:
                        diffs.append(d)
                    rows.append([src["label"], f"{eps:g}",
                                 tgt["label"] + (" (white-box)" if white else ""),
                                 rate(k[True], len(recs[True])), rate(k[False], len(recs[False])),
                                 f"{d:+.2f}", fmt(_mean(recs[True], "l2"), 3),
                                 fmt(_mean(recs[False], "l2"), 3)])
            recs_d = {t: res.get(exp, pname, src["name"], ddn[t]["key"]) for t in ddn}
            if len(ddn) == 2 and all(recs_d.values()):
                t_fcr, t_full = max(ddn), min(ddn)
                for t in ddn:
                    ddn_l2[t] += [r["l2"] for r in recs_d[t]]
                for tgt in models:
                    white = tgt["name"] == src["name"]
                    asr = {t: 100 * _fooled(recs_d[t], tgt["name"]) / len(recs_d[t])
                           for t in ddn}
                    if not white:
                        ddn_diffs.append(asr[t_fcr] - asr[t_full])
                    ddn_rows.append([src["label"],
                                     tgt["label"] + (" (white-box)" if white else "")] + [
                        f"{rate(_fooled(recs_d[t], tgt['name']), len(recs_d[t]))}, "
                        f"L2 {fmt(_mean(recs_d[t], 'l2'), 3)}" for t in (t_fcr, t_full)] + [
                        f"{asr[t_fcr] - asr[t_full]:+.2f}"])
        n = res.part_status(exp, pname).get("n_eligible", "?")
        blocks.append(Block("table", table=Table(
            ["source", "L2 budget eps", "target", "restricted (FCR t=0.2) ASR",
             "unrestricted ASR", "diff (points)", "mean L2 restricted", "mean L2 unrestricted"],
            rows, [scale_note(res, exp, part),
                   f"PGD-L2 crafted once on the source at L2 <= eps ([0, 1] scale), inside the "
                   f"source's FCR mask or on the whole image; ASR = fooled / n on each target "
                   f"over n = {n} images every model classifies correctly (rows marked "
                   "white-box: the source itself). Mean L2 over all attacked images.",
                   _conclusion(diffs, "Equal-L2 transfer (source != target)")])))
        if ddn_rows:
            blocks.append(Block("table", table=Table(
                ["source", "target", f"fcr-ddn t={max(ddn)} ASR, mean L2",
                 f"fcr-ddn t={min(ddn)} ASR, mean L2", "diff (points)"], ddn_rows,
                ["Minimum-norm fcr-ddn inside the FCR (t = 0.2) and on the whole image (t = 0): "
                 "their L2 differ (mean over all attacked images), so this is not an equal-"
                 "budget comparison.",
                 _conclusion(ddn_diffs, "fcr-ddn transfer (source != target)",
                             f"Not an equal-budget test: the restricted perturbations have "
                             f"mean L2 {fmt(_mean_of(ddn_l2[max(ddn)]), 3)} against "
                             f"{fmt(_mean_of(ddn_l2[min(ddn)]), 3)} unrestricted (all "
                             "sources).")])))
        series = [(f"{'restricted' if r else 'unrestricted'} ({'white-box' if w else 'transfer'})",
                   budgets, [sum(curves[(r, w)][e]) / len(curves[(r, w)][e]) for e in budgets])
                  for w in (False, True) for r in (True, False) if curves[(r, w)]]
        png = figures.line_plot(figdir / f"{exp}-{pname}.png",
                                f"ASR vs L2 budget ({pname})", "L2 budget eps [0,1]",
                                "ASR (%), mean over source->target pairs", series)
        blocks.append(Block("img", f"PGD-L2 ASR against the L2 budget, restricted to the FCR "
                            f"(t = 0.2) or not ({pname}); transfer: mean over the source->"
                            "target pairs with source != target",
                            src=f"{figdir.name}/{png.name}"))
    if res.config[exp].get("notes"):
        blocks.append(Block("p", res.config[exp]["notes"]))
    return blocks


SECTIONS = {"fcr-importance": importance, "whitebox": whitebox, "comparison": comparison,
            "masked-fgsm": masked_fgsm, "transfer": transfer,
            "sweep-steps-temperature": sweep_steps, "sweep-threshold": sweep_threshold,
            "visual": visual, "region-tradeoff": region_tradeoff,
            "transfer-equal-l2": transfer_equal_l2}
