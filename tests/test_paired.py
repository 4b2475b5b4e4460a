"""The staged region experiment: paired log-ratio statistics, packed records that resume on a
fresh clone, image-major stages and the report regenerated from committed records alone."""

from __future__ import annotations

import json
import math
import shutil
import statistics

import pytest
import torch

from conftest import need_shared
from fcrattack.base.stats import holm, log_ratio_test, sign_test, t_sf
from fcrattack.base.store import record_key
from fcrattack.experiments import ResultStore, get_config, run
from fcrattack.experiments.catalog.region_thesis import EXPERIMENT, PRIMARY, SECONDARY
from fcrattack.experiments.machinery.paired_stats import MIN_PAIRS, Cell, answer, verdicts
from fcrattack.experiments.machinery.spec import VERSION, upgrade
from fcrattack.report import render


# --- statistics -----------------------------------------------------------------------------
def test_t_tail_matches_scipy():
    stats = pytest.importorskip("scipy.stats", reason="scipy (test extra) gives the reference")
    for t, df in [(0.5, 3), (2.1, 29), (-1.3, 99), (4.0, 5), (0.0, 10), (10.0, 2), (-7.5, 1)]:
        assert t_sf(t, df) == pytest.approx(stats.t.sf(t, df), rel=1e-9, abs=1e-15)


def test_holm_by_hand():
    # sorted 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), kept monotone; NaN is no test
    assert holm([0.01, 0.04, 0.03, math.nan, 0.005]) == pytest.approx(
        [0.03, 0.06, 0.06, math.nan, 0.02], nan_ok=True
    )
    assert holm([0.5, 0.9]) == [1.0, 1.0]


def test_log_ratio_test_is_the_geometric_mean_and_tests_both_ways():
    num, den = [2.0, 8.0, 1.0, 4.0], [1.0, 2.0, 1.0, 1.0]  # ratios 2, 4, 1, 4
    r = log_ratio_test(num, den)
    assert r.n == 4 and r.ratio == pytest.approx((2 * 4 * 1 * 4) ** 0.25)
    assert r.lo <= r.ratio <= r.hi
    d = [math.log(2), math.log(4), 0.0, math.log(4)]
    m, sd = statistics.mean(d), statistics.stdev(d)
    assert r.p == pytest.approx(2 * t_sf(m / (sd / 2), 3))
    # identical L2 up to +-1 %: equivalent within 5 %, not different
    rng = torch.Generator().manual_seed(0)
    base = torch.rand(60, generator=rng) + 0.5
    near = base * (1 + 0.02 * (torch.rand(60, generator=rng) - 0.5))
    eq = log_ratio_test(near, base)
    assert eq.p_equivalent < 0.001 and eq.p > 0.05
    # a 20 % difference is not equivalent and is different
    far = log_ratio_test(base * 1.2 * (1 + 0.02 * torch.rand(60, generator=rng)), base)
    assert far.p < 1e-6 and far.p_equivalent > 0.5
    # non-positive or non-finite pairs are left out; too few pairs give NaN
    assert log_ratio_test([1.0, math.nan, -1.0], [1.0, 1.0, 1.0]).n == 1
    assert math.isnan(log_ratio_test([1.0], [2.0]).p)
    with pytest.raises(ValueError, match="pair up"):
        log_ratio_test([1.0, 2.0], [1.0])


def test_sign_test_by_hand():
    assert sign_test(0, 0) == 1.0
    assert sign_test(5, 0) == pytest.approx(2 / 32)
    assert sign_test(1, 4) == pytest.approx(2 * 6 / 32)
    assert sign_test(3, 3) == 1.0


def _cell(ratio_spread: float, shift: float, n: int, control: str = "centred-disc") -> Cell:
    gen = torch.Generator().manual_seed(n)
    den = torch.rand(n, generator=gen) + 0.5
    num = den * shift * (1 + ratio_spread * (torch.rand(n, generator=gen) - 0.5))
    return Cell("m", 0.5, control, log_ratio_test(num, den), n, n, n)


def test_verdicts_follow_holm_and_tost_and_need_enough_pairs():
    cells = [
        _cell(0.02, 1.3, 40),  # clearly more L2 in the control
        _cell(0.02, 0.8, 40, "shuffled-fcr"),  # clearly less
        _cell(0.01, 1.0, 40),  # equal within 1 %
        _cell(1.5, 1.05, 40),  # noisy: neither
        _cell(0.02, 1.3, MIN_PAIRS - 1),  # too few pairs: not a test
    ]
    v = verdicts(cells)
    assert v == [
        "FCR needs less",
        "control needs less",
        "equivalent (+-5 %)",
        "not shown different",
        "too few pairs",
    ]
    text = answer("cifar10", cells, v)
    assert "from 4 Holm-corrected tests" in text and "against centred disc, of 4 cells" in text


# --- the staged run -------------------------------------------------------------------------
def _tiny(n: int):
    """The CIFAR-10 part of the experiment, 3 steps, one model, stages of 2 images."""
    cfg = get_config("region-thesis", n=n)
    part = next(p for p in cfg.parts if p.name == "cifar10")
    part.models = part.models[:1]
    part.runs = [r for r in part.runs if r.mask_t == 0.5]
    for r in part.runs:
        r.params["steps"] = 3
        if r.first:
            r.first = 3
    part.stages = (2, 4)
    cfg.parts = [part]
    return cfg


def test_thesis_config_names_primary_secondary_and_is_not_in_all():
    assert not EXPERIMENT.in_all and EXPERIMENT.kind == "paired"
    cfg = get_config("region-thesis")
    sides = {p.name: p for p in cfg.parts}
    lite0, lite2 = sides["imagenet"].models
    assert (lite0.size, lite0.max_images, lite2.size, lite2.max_images) == (224, 100, 260, 64)
    for part in cfg.parts:
        sources = {r.mask_source for r in part.runs if r.phase == 0}
        assert sources == {"fcr", *PRIMARY}
        assert {r.mask_source for r in part.runs if r.phase == 2} == set(SECONDARY)
        for r in part.runs:
            if r.attack == "pgdl2":
                assert r.budget_rule == "median" and r.budget_from.startswith("ddn")


def test_staged_run_pairs_early_packs_and_resumes_from_the_packed_file(tmp_path, monkeypatch):
    root = need_shared("the experiments read their data sets and models from it")
    cfg = _tiny(8)
    out = tmp_path / "run"
    # interrupt after the first stage: every run of phase 0 has the same first 2 images
    from fcrattack.experiments.machinery import paired

    stages = []

    def stop_after_first(self):
        stages.append(len(self.runner.store))
        if len(stages) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(paired.PairedRuns, "_stage_done", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        run(cfg, out_dir=out, root=root)
    first = ResultStore.records_of(out)
    phase0 = [r for r in cfg.parts[0].runs if r.phase == 0]
    ids = {r["id"] for r in first}
    assert len(ids) == 2 and len(first) == 2 * len(phase0)
    monkeypatch.undo()
    run(cfg, out_dir=out, root=root)
    recs = ResultStore.records_of(out)
    n = json.loads((out / "status.json").read_text())["region-thesis"]["parts"]["cifar10"][
        "n_eligible"
    ]
    runs = cfg.parts[0].runs
    expect = sum(min(n, r.first or n) for r in runs)
    assert len(recs) == expect and len({r["key"] for r in recs}) == expect
    # every region of an image has the FCR's pixel count
    areas: dict[str, set[float]] = {}
    for r in recs:
        if r["attack"] == "region-ddn":
            areas.setdefault(r["id"], set()).add(r["mask_fraction"])
    assert all(len(a) == 1 for a in areas.values())
    # PGD-L2's one budget per model: the median L2 of the FCR's successful region DDN
    fcr = [r["l2"] for r in recs if r["attack_key"] == "ddn100-fcr-t0.5" and r["success"]]
    pgd = [r for r in recs if r["attack"] == "pgdl2"]
    assert pgd and len({r["budget_l2"] for r in pgd}) == 1
    assert pgd[0]["budget_l2"] == pytest.approx(statistics.median(fcr))
    assert all(r["l2"] <= r["budget_l2"] * (1 + 1e-4) for r in pgd)
    # only the packed file holds records; its bytes do not depend on the time
    assert (out / "records.jsonl").stat().st_size == 0
    packed = (out / "records.jsonl.gz").read_bytes()
    # a fresh clone: the committed files only; a rerun attacks nothing
    clone = tmp_path / "clone"
    clone.mkdir()
    for name in ("records.jsonl.gz", "config.json", "status.json", "env.json"):
        shutil.copy(out / name, clone / name)
    from fcrattack.attacks import base

    calls = []
    monkeypatch.setattr(base.Attack, "run", lambda *a, **k: calls.append(1))
    run(cfg, out_dir=clone, root=root)
    assert not calls and (clone / "records.jsonl.gz").read_bytes() == packed
    monkeypatch.undo()
    # the report is regenerated from the committed records alone
    text = render(clone)[0].read_text()
    assert "### Design (cifar10)" in text and "Primary controls (named before the results)" in text
    assert "**Answer (cifar10)**" in text and "too few pairs" in text
    assert "### Second view: PGD-L2 at a fixed budget (cifar10)" in text
    assert "s per image-region-step" in text
    # a folder of config version 4 (records named the setting "attack" and the attack
    # "attack_class") is read, resumed without attacking and reported
    old = tmp_path / "v4"
    old.mkdir()
    v4 = [
        {**{k: v for k, v in r.items() if k != "attack_key"}, "attack": r["attack_key"]}
        | {"attack_class": r["attack"]}
        for r in recs
    ]
    (old / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in v4))
    config = json.loads((out / "config.json").read_text())
    config["region-thesis"]["version"] = 4
    (old / "config.json").write_text(json.dumps(config))
    shutil.copy(out / "status.json", old / "status.json")
    assert {r["key"]: r for r in ResultStore.records_of(old, upgrade)} == {
        r["key"]: r for r in recs
    }
    monkeypatch.setattr(base.Attack, "run", lambda *a, **k: calls.append(1))
    run(cfg, out_dir=old, root=root)
    assert not calls
    monkeypatch.undo()
    assert json.loads((old / "config.json").read_text())["region-thesis"]["version"] == VERSION
    assert render(old)[0].read_text().count("### Design (cifar10)") == 1


def test_staged_run_refuses_another_image_set(tmp_path):
    root = need_shared("the experiments read their data sets and models from it")
    cfg = _tiny(6)
    cfg.parts[0].runs = cfg.parts[0].runs[:1]
    run(cfg, out_dir=tmp_path, root=root)
    again = _tiny(9)
    again.parts[0].runs = again.parts[0].runs[:1]
    with pytest.raises(ValueError, match="other ones .*stages would mix them"):
        run(again, out_dir=tmp_path, root=root)
    run(cfg, out_dir=tmp_path, root=root)  # the same images resume


def test_whitebox_imagenet_budgets_per_image_and_attacks_only_lite0(tmp_path):
    """Tables 1/2 at 100 photos: the same-L2 runs take each image's own FCR L2 (phase 1),
    EfficientNet-Lite2 only selects the images, and the report shows both tables."""
    root = need_shared("the experiments read their data sets and models from it")
    pytest.importorskip("efficientnet_lite_pytorch", reason="EfficientNet-Lite (test extra)")
    cfg = get_config("whitebox-imagenet", n=5)
    part = cfg.parts[0]
    assert [m.max_images for m in part.models] == [100, 0]
    part.models[0].max_images = 3
    keep = ("fcr", "pgdl2-at-fcr-l2", "cw-at-fcr-l2", "region-ddn")
    part.runs = [r for r in part.runs if r.key in keep]
    for r in part.runs:
        r.params["steps"] = 2
    part.stages = (2,)
    run(cfg, out_dir=tmp_path, root=root)
    recs = ResultStore.records_of(tmp_path)
    assert {r["model"] for r in recs} == {"efficientnet-lite0"}
    status = json.loads((tmp_path / "status.json").read_text())["whitebox-imagenet"]
    eligible = status["parts"]["imagenet"]["eligible_ids"]
    by = {(r["attack_key"], r["id"]): r for r in recs}
    fcr = {i: by[("fcr", i)] for i in eligible[:3]}
    assert len(recs) == 3 * len(part.runs)
    for i, f in fcr.items():
        pgd = by[("pgdl2-at-fcr-l2", i)]
        assert pgd["budget_l2"] == pytest.approx(f["l2"], rel=1e-6)
        assert pgd["l2"] <= f["l2"] * (1 + 1e-4)
    text = render(tmp_path)[0].read_text()
    assert "### Table 1 rows (ImageNet)" in text and "### Table 2 rows (ImageNet)" in text
    table1 = text.split("### Table 1 rows (ImageNet)")[1].split("### Table 2")[0]
    rows = [line for line in table1.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 1 and "EfficientNet-Lite0" in rows[0]  # Lite2 is not attacked
    assert "EfficientNet-Lite2 only selects the images" in table1


def test_a_changed_order_at_the_longer_budget_moves_the_answer_to_it(tmp_path):
    """The convergence check: where the order of the regions at 200 steps differs from 50
    steps, the report says so and tests the primary cells at 200 steps as a family of their
    own (synthetic records: the FCR needs 20 % less at 50 steps, the centred disc 10 % less
    at 200 steps on 32 images)."""
    cfg = get_config("region-thesis")
    part = next(p for p in cfg.parts if p.name == "imagenet")
    part.models = part.models[:1]
    cfg.parts = [part]
    ids = [f"img{i:03d}" for i in range(40)]
    gen = torch.Generator().manual_seed(0)
    records = []
    for setting in part.runs:
        if setting.attack != "region-ddn" or setting.mask_source not in ("fcr", *PRIMARY):
            continue
        n = setting.first or len(ids)
        factor = {"fcr": 1.0, "centred-disc": 1.25, "shuffled-fcr": 1.3}[setting.mask_source]
        if setting.params["steps"] == 200 and setting.mask_source == "centred-disc":
            factor = 0.9
        for i in ids[:n]:
            noise = 1 + 0.02 * float(torch.rand(1, generator=gen))
            l2 = 0.2 * factor * noise
            psnr = 10 * math.log10(3 * 224 * 224 / l2**2)  # as perturbation_norms gives it
            fields = ("region-thesis", "imagenet", "efficientnet-lite0", setting.key)
            records.append(
                {
                    "key": record_key(*fields, setting.setting(), i),
                    **dict(zip(("experiment", "part", "model", "attack_key"), fields)),
                    "attack": setting.attack,
                    "setting": setting.setting(),
                    "id": i,
                    **{"label": 1, "pred_clean": 1, "pred_adv": 2, "clean_correct": True},
                    **{"success": True, "success_uint8": True, "l0": 3000, "l0_pixels": 1000},
                    **{"l2": l2, "l2_255": 255 * l2, "linf": l2 / 10, "linf_255": 25.5 * l2},
                    **{"psnr": psnr, "psnr_255": psnr + 20 * math.log10(255), "time_s": 0.1},
                }
            )
    ResultStore(tmp_path).append(records)
    (tmp_path / "config.json").write_text(json.dumps({"region-thesis": cfg.to_dict()}))
    status = {"parts": {"imagenet": {"eligible_ids": ids, "n_drawn": 40, "n_eligible": 40}}}
    (tmp_path / "status.json").write_text(json.dumps({"region-thesis": status}))
    text = render(tmp_path)[0].read_text()
    assert "The order of the regions changes at the longer budget" in text
    assert "holds at the longer budget in 0 of 2 cells" in text
    at200 = text.split("### Primary cells at 200 steps (imagenet)")[1]
    assert "**Answer (imagenet, 200 steps, first 32 images)**, from 4 Holm-corrected" in at200
    assert "against centred disc, of 2 cells: control needs less: 2" in at200
