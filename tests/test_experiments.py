"""The experiment layer: configs, the resumable store and runner, pre-flight checks, report."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch

from conftest import need_shared
from fcrattack.attacks import ATTACKS, MaskedFGSM
from fcrattack.cli import build_parser
from fcrattack.cli.commands import cmd_report, cmd_reproduce
from fcrattack.experiments import (
    EXPERIMENTS,
    SCALES,
    ResultStore,
    get_config,
    preflight,
    read_records,
    run,
)
from fcrattack.experiments.machinery.loaders import load_spec_model
from fcrattack.experiments.machinery.spec import R20, READABLE
from fcrattack.report import render
from fcrattack.viz.document import rate


# --- configs --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_config_has_both_scales_and_known_attacks(name):
    for scale in SCALES:
        cfg = get_config(name, scale)
        assert cfg.name == name and cfg.scale == scale and cfg.version >= 1
        assert cfg.parts, name
        for part in cfg.parts:
            assert part.models and all(m.stands_for and m.label for m in part.models)
            keys = [r.key for r in part.runs]
            assert len(keys) == len(set(keys)), f"duplicate run keys in {name}"
            for i, r in enumerate(part.runs):
                assert r.attack in ATTACKS, f"{name}: attack {r.attack!r} is not registered"
                if r.budget_from:
                    assert r.budget_from in keys[:i], "budget run must come first"
    paper, cpu = get_config(name, "paper"), get_config(name, "cpu")
    if EXPERIMENTS[name].in_all:  # a staged experiment outside 'all' has one design
        assert sum(p.data.n for p in cpu.parts) < sum(p.data.n for p in paper.parts)


def test_config_n_override_and_errors():
    cfg = get_config("whitebox", "paper", n=7)
    assert all(p.data.n == 7 and p.data.batch_size <= 7 for p in cfg.parts)
    assert get_config("comparison", "paper").parts[0].data.n == 1000
    with pytest.raises(ValueError, match="unknown experiment"):
        get_config("table9")
    with pytest.raises(ValueError, match="unknown scale"):
        get_config("whitebox", "huge")


# --- store ----------------------------------------------------------------------------------
def test_store_drops_partial_last_line_and_never_duplicates(tmp_path, caplog):
    store = ResultStore(tmp_path)
    assert store.append([{"key": "a", "v": 1}, {"key": "b", "v": 2}]) == 2
    assert store.append([{"key": "a", "v": 9}]) == 0
    with (tmp_path / "records.jsonl").open("a") as f:
        f.write('{"key": "c", "v"')  # a kill in the middle of a write
    assert [r["key"] for r in read_records(tmp_path / "records.jsonl")] == ["a", "b"]
    with caplog.at_level(logging.WARNING):
        store = ResultStore(tmp_path)
    assert "partial last line" in caplog.text
    assert store.append([{"key": "c", "v": 3}]) == 1
    recs = list(read_records(tmp_path / "records.jsonl"))
    assert [r["key"] for r in recs] == ["a", "b", "c"] and recs[0]["v"] == 1


# --- runner: resume -------------------------------------------------------------------------
def tiny_masked_fgsm(n: int = 8):
    """The masked-fgsm config shrunk to one model, two grid cells, n images, batches of 3."""
    cfg = get_config("masked-fgsm", "cpu", n=n)
    part = cfg.parts[0]
    part.models = [R20]
    part.runs = [
        r for r in part.runs if r.key in ("masked-fgsm-0.03-0.00", "masked-fgsm-0.05-0.05")
    ]
    part.data = dataclasses.replace(part.data, batch_size=3)
    return cfg


class Counting(MaskedFGSM):
    """Masked FGSM that counts attacked images and can fail at a given call."""

    images = 0
    calls = 0
    fail_at: int | None = None

    def run(self, x, y, **kw):
        type(self).calls += 1
        if type(self).calls == type(self).fail_at:
            raise RuntimeError("simulated crash")
        type(self).images += len(x)
        return super().run(x, y, **kw)


def _final(path):
    return {r["key"]: (r["success"], round(r["l2"], 4)) for r in read_records(path)}


def test_a_resume_with_another_model_behind_the_same_name_is_refused(tmp_path, monkeypatch):
    """Regression: resuming with other weights behind a model's name (another --shared
    folder, a replaced weights file) attacked the rest of the images with them and the report
    mixed both models' records."""
    root = need_shared("the experiments read their data sets and models from it")
    out = tmp_path / "out"
    run(tiny_masked_fgsm(n=4), out_dir=out, root=root)
    n_records = len(list(read_records(out / "records.jsonl")))
    from fcrattack.experiments.machinery import driver

    loaded = driver.load_spec_model

    def other_weights(*args, **kwargs):
        model = loaded(*args, **kwargs)
        with torch.no_grad():
            next(model.parameters()).add_(1e-3)
        return model

    monkeypatch.setattr(driver, "load_spec_model", other_weights)
    with pytest.raises(ValueError, match="made with another resnet20"):
        run(tiny_masked_fgsm(n=6), out_dir=out, root=root)
    assert len(list(read_records(out / "records.jsonl"))) == n_records
    monkeypatch.setattr(driver, "load_spec_model", loaded)  # the same model: it resumes
    run(tiny_masked_fgsm(n=6), out_dir=out, root=root)
    assert len(list(read_records(out / "records.jsonl"))) > n_records


def test_a_model_pattern_matching_two_files_is_refused(tmp_path):
    """Regression: a second weights file matching a model's pattern in the shared folder
    (``resnet20-*.th``) was used silently, the first in sorted order, under the model's name."""
    folder = tmp_path / R20.source.rsplit("/", 1)[0]
    folder.mkdir(parents=True)
    for name in ("resnet20-00000000.th", "resnet20-12fca82f.th"):
        (folder / name).write_bytes(b"")
    with pytest.raises(ValueError, match=r"2 files match .*resnet20-00000000.th, resnet20-12f"):
        load_spec_model(R20, tmp_path, torch.device("cpu"))


def test_a_resume_on_a_replaced_image_or_malformed_inputs_is_refused(tmp_path, monkeypatch):
    """Regression: a resumed run kept the records of an image whose file had been replaced
    (the images were not hashed; then a smaller draw dropped the digests of the others), a
    status.json whose ``inputs`` was of the wrong form was taken for one without digests, and
    one of the wrong structure gave a traceback."""
    root = need_shared("the experiments read their data sets and models from it")
    out = tmp_path / "out"
    run(tiny_masked_fgsm(n=4), out_dir=out, root=root)
    n_records = len(list(read_records(out / "records.jsonl")))
    from fcrattack.experiments.machinery import driver

    loaded = driver.load_part_data

    first = json.loads((out / "status.json").read_text())["masked-fgsm"]["parts"]
    first = next(iter(first.values()))["eligible_ids"][0]

    def replaced_first(*args, **kwargs):
        data = loaded(*args, **kwargs)
        i = data.ids.index(first)
        data.images[i] = data.images[i].flip(-1)  # an attacked file replaced by its mirror
        return data

    run(tiny_masked_fgsm(n=2), out_dir=out, root=root)  # a smaller draw keeps the digests
    with monkeypatch.context() as patch:
        patch.setattr(driver, "load_part_data", replaced_first)
        with pytest.raises(ValueError, match=r"other pixels of 1 image\(s\)"):
            run(tiny_masked_fgsm(n=6), out_dir=out, root=root)
    assert len(list(read_records(out / "records.jsonl"))) == n_records
    good = (out / "status.json").read_text()
    status = json.loads(good)
    entry = status["masked-fgsm"]["parts"][tiny_masked_fgsm().parts[0].name]
    for bad in ("zz", {"models": "abc"}, [1, 2], {"images": [1]}):
        entry["inputs"] = bad
        (out / "status.json").write_text(json.dumps(status))
        with pytest.raises(ValueError, match="inputs of masked-fgsm/.* are malformed"):
            run(tiny_masked_fgsm(n=6), out_dir=out, root=root)
    for bad in ([], {"masked-fgsm": "x"}, {"masked-fgsm": {"parts": "x"}}):  # a traceback once
        (out / "status.json").write_text(json.dumps(bad))
        with pytest.raises(ValueError, match="status.json is malformed"):
            run(tiny_masked_fgsm(n=6), out_dir=out, root=root)
    (out / "status.json").write_text(good)


def tiny_comparison(n: int = 2):
    """Table 2 with region DDN alone, 5 steps, on both parts (CIFAR-10, then ImageNet)."""
    cfg = get_config("comparison", "cpu", n=n)
    for part in cfg.parts:
        ddn = next(r for r in part.runs if r.key == "region-ddn")
        part.runs = [dataclasses.replace(ddn, params={**ddn.params, "steps": 5})]
    return cfg


def test_a_replaced_image_of_a_later_part_is_refused(tmp_path, monkeypatch):
    """Regression: writing the first part's status entry dropped the later parts' entries
    before their resume checks read them, so a replaced ImageNet photo (the second part)
    was attacked again and its records mixed with those of the old pixels."""
    root = need_shared("the experiments read their data sets and models from it")
    pytest.importorskip("efficientnet_lite_pytorch", reason="the ImageNet part's model")
    out = tmp_path / "out"
    run(tiny_comparison(), out_dir=out, root=root)

    def photos():
        return [r for r in read_records(out / "records.jsonl") if "/imagenet/" in r["key"]]

    before = photos()
    from fcrattack.experiments.machinery import driver

    loaded = driver.load_part_data

    def replaced_photo(part, *args, **kwargs):
        data = loaded(part, *args, **kwargs)
        if part.name == "imagenet":
            data.images[0] = data.images[0].flip(-1)
        return data

    monkeypatch.setattr(driver, "load_part_data", replaced_photo)
    with pytest.raises(ValueError, match=r"comparison/imagenet records were made on other pix"):
        run(tiny_comparison(n=3), out_dir=out, root=root)  # CIFAR-10's part resumes first
    assert photos() == before
    status = json.loads((out / "status.json").read_text())["comparison"]["parts"]
    assert set(status) == {"cifar10", "imagenet"}  # both entries kept
    # Table 2 gives the 8-bit re-check beside the float ASR, counted from the records
    text = render(out)[0].read_text()
    assert "| ASR after uint8 |" in text
    for part in status:
        recs = [r for r in read_records(out / "records.jsonl") if f"/{part}/" in r["key"]]
        ok = sum(r["success_uint8"] and r["clean_correct"] for r in recs)
        assert f"| {rate(ok, len(recs))} |" in text, part


def test_interrupted_run_resumes_without_redoing_or_duplicating(tmp_path, monkeypatch):
    root = need_shared("the experiments read their data sets and models from it")
    monkeypatch.setitem(ATTACKS, "masked-fgsm", Counting)
    ref_dir, out = tmp_path / "ref", tmp_path / "out"
    run(tiny_masked_fgsm(), out_dir=ref_dir, root=root)
    n_elig = json.loads((ref_dir / "status.json").read_text())["masked-fgsm"]["parts"]["cifar10"][
        "n_eligible"
    ]
    assert n_elig >= 4
    total = 2 * n_elig
    assert Counting.images == total

    Counting.images, Counting.calls, Counting.fail_at = 0, 0, 2
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(tiny_masked_fgsm(), out_dir=out, root=root)
    done_first = Counting.images
    assert len(list(read_records(out / "records.jsonl"))) == done_first == min(3, n_elig)
    # a kill in the middle of the next write: half a line at the end
    path = out / "records.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])

    Counting.images, Counting.calls, Counting.fail_at = 0, 0, None
    run(tiny_masked_fgsm(), out_dir=out, root=root)
    assert Counting.images == total - (done_first - 1)  # only the lost record is redone
    keys = [r["key"] for r in read_records(path)]
    assert len(keys) == len(set(keys)) == total
    assert _final(path) == _final(ref_dir / "records.jsonl")

    Counting.images = 0
    run(tiny_masked_fgsm(), out_dir=out, root=root)  # all done: nothing is attacked again
    assert Counting.images == 0 and len(list(read_records(path))) == total

    # the report of this tiny run: paper's cell, ours, the denominator, the conventions
    md, page = render(out)
    text = md.read_text()
    assert "33.47" in text  # paper: ResNet-18, eps1 = 0.03, eps2 = 0.00
    recs = [r for r in read_records(path) if r["attack_key"] == "masked-fgsm-0.03-0.00"]
    k = sum(r["success"] for r in recs)
    assert f"({k}/{n_elig})" in text
    assert f"n = {n_elig} classified correctly by every model" in text
    assert "MAX = 1" in text and "PSNR_255" in text and "[0, 255]" in text
    assert "ResNet-20 (akamaster) for ResNet-18" in text
    assert page.is_file() and "<table>" in page.read_text()
    for name in ("config.json", "env.json", "status.json"):
        assert (out / name).is_file()
    assert json.loads((out / "env.json").read_text())["torch"] == torch.__version__

    # another config version (or scale) must not resume into this folder
    older = dataclasses.replace(tiny_masked_fgsm(), version=min(READABLE) - 1)  # unreadable
    with pytest.raises(ValueError, match="config version .* choose another output folder"):
        run(older, out_dir=out, root=root)
    paper = dataclasses.replace(tiny_masked_fgsm(), scale="paper")
    with pytest.raises(ValueError, match="scale 'paper'"):
        run(paper, out_dir=out, root=root)
    assert len(list(read_records(path))) == total


# --- pre-flight -----------------------------------------------------------------------------
def test_preflight_warns_on_probabilities(resnet20, correct_batch, caplog):
    x, y = correct_batch[0][:4], correct_batch[1][:4]
    assert preflight(resnet20, x, y) == []
    probs = torch.nn.Sequential(resnet20, torch.nn.Softmax(dim=1))
    with caplog.at_level(logging.WARNING):
        warnings = preflight(probs, x, y, name="softmax-model")
    assert any("probabilities" in w for w in warnings)
    assert "PRE-FLIGHT CHECK FAILED" in caplog.text and "softmax-model" in caplog.text


def test_preflight_warns_on_zero_gradient_and_nondeterminism(resnet20, correct_batch):
    x, y = correct_batch[0][:4], correct_batch[1][:4]

    class Detached(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = resnet20

        def forward(self, z):
            return self.m(z.detach().round())

    class Noisy(Detached):
        def forward(self, z):
            return self.m(z) + torch.randn(len(z), 10)

    assert any("gradient is all zero" in w for w in preflight(Detached(), x, y))
    assert any("not deterministic" in w for w in preflight(Noisy(), x, y))


# --- CLI hook -------------------------------------------------------------------------------
def test_cli_parses_reproduce_and_report():
    parser = build_parser()
    for flag in ("--scale", "--preset"):  # --preset: the old name of --scale
        args = parser.parse_args(
            ["reproduce", "all", flag, "paper", "--out", "o", "--n", "5", "--device", "cpu"]
        )
        assert args.func is cmd_reproduce and args.name == "all" and args.n == 5
        assert args.scale == "paper" and args.device == "cpu"
    args = parser.parse_args(["report", "o"])
    assert args.func is cmd_report and args.out == "o"
    with pytest.raises(Exception, match="invalid choice"):
        parser.parse_args(["reproduce", "table9"])


# --- beyond the paper: region trade-off and equal-L2 transfer -------------------------------
@pytest.mark.parametrize("name", ["region-tradeoff", "transfer-equal-l2"])
def test_beyond_configs_load_at_both_scales(name):
    paper, cpu = get_config(name, "paper"), get_config(name, "cpu")
    assert paper.parts[0].data.n == 1000 > cpu.parts[0].data.n
    cw = [r for r in cpu.parts[0].runs if r.attack == "cw"]
    assert all(r.params["steps"] == 1000 for r in cw)  # the paper's C&W at both scales
    if name == "transfer-equal-l2":
        runs = cpu.parts[0].runs
        assert [m.name for m in cpu.parts[0].models] == [
            m.name for m in get_config("transfer", "cpu").parts[0].models
        ]
        restricted = [r for r in runs if r.mask_t is not None]
        assert restricted and all(r.mask_t == 0.2 and r.attack == "pgdl2" for r in restricted)
        assert "mask=fcr(t=0.2)" in restricted[0].setting()


def _tiny(name: str, n: int = 6):
    """A config shrunk to n images and a few steps."""
    cfg = get_config(name, "cpu", n=n)
    part = cfg.parts[0]
    part.runs = [
        r
        for r in part.runs
        if r.params.get("t", 0.2) in (0.0, 0.2) and r.params.get("eps", 1.0) == 1.0
    ]
    for r in part.runs:
        r.params["steps"] = 10 if r.attack == "cw" else 3
    return cfg


def test_region_tradeoff_tiny_run_reports_ratios_and_plot(tmp_path):
    root = need_shared("the experiments read their data sets and models from it")
    run(_tiny("region-tradeoff"), out_dir=tmp_path, root=root)
    recs = list(read_records(tmp_path / "records.jsonl"))
    n = json.loads((tmp_path / "status.json").read_text())["region-tradeoff"]["parts"]["cifar10"][
        "n_eligible"
    ]
    assert n >= 4 and len(recs) == 2 * 3 * n  # two models x (C&W, t = 0, t = 0.2)
    text = render(tmp_path)[0].read_text()
    assert "(region-tradeoff)" in text
    assert "L2 / region DDN t=0" in text and "L0 % of C&W" in text
    assert "PASS" not in text and "goal" not in text  # no project goals in library output
    assert f"/{n})" in text  # denominators
    assert (tmp_path / "figures" / "region-tradeoff-cifar10.png").is_file()


def test_transfer_equal_l2_tiny_run_restricts_to_fcr_and_compares(tmp_path):
    root = need_shared("the experiments read their data sets and models from it")
    run(_tiny("transfer-equal-l2"), out_dir=tmp_path, root=root)
    recs = list(read_records(tmp_path / "records.jsonl"))
    models = [m.name for m in get_config("transfer-equal-l2").parts[0].models]
    restricted = [r for r in recs if r["attack_key"] == "pgdl2-fcr-1.0"]
    full = [r for r in recs if r["attack_key"] == "pgdl2-full-1.0"]
    assert restricted and len(restricted) == len(full)
    assert all(set(r["transfer"]) == set(models) for r in recs)
    assert any(r["mask_fraction"] < 1 for r in restricted)  # the FCR, not the whole image
    assert all(r["l2"] <= 1.0 + 1e-4 for r in restricted + full)
    assert all("mask_fraction" not in r for r in full)
    text = render(tmp_path)[0].read_text()
    assert "(transfer-equal-l2)" in text and "restricted (FCR t=0.2) ASR" in text
    assert "Equal-L2 transfer (source != target): restricted higher in" in text
    assert "region DDN t=0.2 ASR, mean L2" in text
    n = len(restricted) // len(models)
    assert f"/{n})" in text
    assert (tmp_path / "figures" / "transfer-equal-l2-cifar10.png").is_file()


# --- beyond the paper: region controls ------------------------------------------------------
def test_region_controls_config_covers_every_source_area_and_side():
    from fcrattack.regions import SOURCES

    for scale in SCALES:
        cfg = get_config("region-controls", scale)
        assert [p.name for p in cfg.parts] == ["cifar10", "imagenet"]
        for part in cfg.parts:
            assert len(part.models) == 3
            ddn = [r for r in part.runs if r.attack == "region-ddn"]
            assert {(r.mask_source, r.mask_t) for r in ddn} == {
                (s, t) for s in SOURCES for t in (0.2, 0.5, 0.7)
            }
            assert len({r.params["steps"] for r in ddn}) == 1  # the same options throughout
    paper = get_config("region-controls", "paper")
    assert paper.parts[0].data.n >= 200 and paper.parts[1].data.n >= 100
    assert {r.params["steps"] for r in paper.parts[0].runs if r.attack == "region-ddn"} == {100}
    cifar = get_config("region-controls", "cpu").parts[0]
    assert {m.name for m in cifar.models} == {
        "resnet20-akamaster",
        "resnet32-akamaster",
        "vgg11-cifar10",
    }
    # the keys of FCR-masked runs are those of the earlier experiments (records resume)
    fcr = next(r for r in cifar.runs if r.mask_source == "fcr" and r.mask_t == 0.2)
    assert fcr.setting().endswith("mask=fcr(t=0.2)")
    other = next(r for r in cifar.runs if r.mask_source == "centred-disc" and r.mask_t == 0.2)
    assert other.setting().endswith("mask=fcr(centred-disc, area of fcr t=0.2)")


def test_region_controls_tiny_run_pairs_equal_areas_and_answers(tmp_path):
    root = need_shared("the experiments read their data sets and models from it")
    cfg = get_config("region-controls", "cpu", n=6)
    cfg.parts = cfg.parts[:1]  # CIFAR-10: the ImageNet side costs minutes on a CPU
    part = cfg.parts[0]
    part.runs = [
        r
        for r in part.runs
        if (r.attack == "region-ddn" and r.mask_t == 0.5) or r.params.get("eps") == 1.0
    ]
    for r in part.runs:
        r.params["steps"] = 3
    run(cfg, out_dir=tmp_path, root=root)
    recs = list(read_records(tmp_path / "records.jsonl"))
    n = json.loads((tmp_path / "status.json").read_text())["region-controls"]["parts"]["cifar10"][
        "n_eligible"
    ]
    assert n >= 3 and len(recs) == 3 * (10 + 3) * n
    areas: dict[tuple[str, str], set[float]] = {}
    for r in recs:
        if r["attack"] == "region-ddn":  # every source: the same area per model and image
            areas.setdefault((r["model"], r["id"]), set()).add(r["mask_fraction"])
        assert set(r["transfer"]) == {m.name for m in part.models}
        assert r["mask_fraction"] < 1  # restricted, never the whole image here
    assert len(areas) == 3 * n and all(len(a) == 1 for a in areas.values())
    text = render(tmp_path)[0].read_text()
    assert "### Region controls (cifar10)" in text
    assert "L2 / FCR's, geometric mean [95 % CI] (pairs)" in text
    # n < 30 images: every cell has too few pairs to test, and the answer says so
    assert "**Answer (cifar10)**, from 0 Holm-corrected tests" in text
    assert "against lowest Grad-CAM pixels, of 3 cells: too few pairs: 3" in text
    assert "against SmoothGrad saliency" in text
    assert "### Equal-L2 transfer: FCR against shuffled and centred regions (cifar10)" in text
    assert "**FCR vs centred disc at equal L2 budgets**" in text
    assert f"/{n})" in text
    assert (tmp_path / "figures" / "region-controls-cifar10.png").is_file()
    # shuffled regions name their partner image; another image set is refused, not mixed
    shuffled = [r for r in recs if r["attack_key"].startswith("ddn-shuffled-fcr")]
    assert all(r["mask_partner"] != r["id"] for r in shuffled)
    again = get_config("region-controls", "cpu", n=8)
    again.parts = again.parts[:1]
    again.parts[0].runs = [r for r in again.parts[0].runs if r.key == shuffled[0]["attack_key"]]
    with pytest.raises(ValueError, match="the eligible images changed"):
        run(again, out_dir=tmp_path, root=root)


def test_attack_run_refuses_unknown_or_unanchored_mask_sources():
    from fcrattack.experiments.machinery.spec import AttackSetting

    with pytest.raises(ValueError, match="unknown mask_source 'middle'"):
        AttackSetting("k", "pgd", "label", mask_t=0.2, mask_source="middle")
    with pytest.raises(ValueError, match="needs mask_t"):
        AttackSetting("k", "pgd", "label", mask_source="centred-disc")


def test_transfer_records_of_another_model_list_are_refused_not_mixed(tmp_path):
    """Regression: resuming a transfer experiment after its model list changed reused records
    evaluated on the old models, and the report then failed with a KeyError."""
    root = need_shared("the experiments read their data sets and models from it")
    cfg = get_config("transfer", "cpu", n=4)
    part = cfg.parts[0]
    part.runs = [r for r in part.runs if r.attack == "pgd"][:1]
    part.runs[0].params["steps"] = 2
    models = list(part.models)
    part.models = models[:2]
    run(cfg, out_dir=tmp_path, root=root)
    part.models = models
    with pytest.raises(ValueError, match="the model list changed"):
        run(cfg, out_dir=tmp_path, root=root)
