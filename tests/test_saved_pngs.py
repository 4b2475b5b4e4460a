"""The saved adversarial PNGs are what the records and the summary say: every attack through
the command line on real images (the bundled CIFAR-10 samples), the PNGs re-read from disk and
classified by the model, compared with ``success_uint8``, ``summary.json`` and the page; and
the attacks that can optimise on the 8-bit grid do so by default on the command line."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fcrattack
from conftest import IMAGENET_SAMPLES, _need
from fcrattack import ATTACKS, FcrattackWarning
from fcrattack.app.attack_dataset import attack_dataset
from fcrattack.attacks import parse_options, supports_grid, to_grid
from fcrattack.cli import main
from fcrattack.data import samples
from fcrattack.metrics import quantize_uint8

#: options that keep each attack short on 4 images
FAST = {
    "region-ddn": ["steps=20"],
    "fcr": ["steps=3"],
    "masked-fgsm": [],
    "fgsm": [],
    "pgd": ["steps=3"],
    "pgdl2": ["steps=3"],
    "mifgsm": ["steps=3"],
    "cw": ["steps=30", "lr=0.05"],
    "jsma": ["steps=10"],
    "onepixel": ["popsize=8", "steps=2"],
}


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _pngs(out: Path, rows: list[dict]) -> torch.Tensor:
    """The adversarial PNGs as read back from disk, (N, 3, H, W) in [0, 1]."""
    pngs = [np.array(Image.open(out / r["adv_png"]).convert("RGB")) for r in rows]
    return torch.from_numpy(np.stack(pngs)).permute(0, 3, 1, 2).float() / 255


def _png_predictions(out: Path, rows: list[dict]) -> torch.Tensor:
    """The default model's classes of the adversarial PNGs as read back from disk."""
    with torch.no_grad():
        return fcrattack.default_model()(_pngs(out, rows)).argmax(1)


def test_every_attack_is_listed_with_fast_options() -> None:
    assert set(FAST) == set(ATTACKS)


def test_every_attack_optimises_on_the_grid() -> None:
    """Every attack declares ``quantize``, so on the command line every record describes the
    saved PNG (masked FGSM, JSMA and One-Pixel once described an unsaved float image)."""
    assert [n for n in ATTACKS if not supports_grid(ATTACKS[n])] == []


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_saved_pngs_match_records_summary_and_page(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / name
    opts = [a for o in FAST[name] for a in ("--opt", o)]
    argv = ["-q", "attack", "--n", "4", "--attack", name, *opts, "--out", str(out)]
    assert main(argv) == 0
    rows = _rows(out)
    pred = _png_predictions(out, rows)
    labels = torch.tensor([r["label"] for r in rows])
    assert (pred != labels).tolist() == [r["success_uint8"] for r in rows], name
    summary = json.loads((out / "summary.json").read_text())
    lost = [r["id"] for r, p, y in zip(rows, pred, labels) if r["success"] and p == y]
    assert summary["png_not_adversarial"] == {"count": len(lost), "ids": lost}
    valid = [r for r in rows if r["clean_correct"]]
    assert summary["summary"]["n_success_uint8"] == sum(r["success_uint8"] for r in valid)
    assert summary["options"]["quantize"] is True
    # the records' norms and success are the saved PNG's (the clean samples are 8-bit images)
    clean = samples()
    x = clean.images[[clean.ids.index(r["id"]) for r in rows]]
    norms = fcrattack.metrics.perturbation_norms(x, _pngs(out, rows))
    for key in ("l2", "linf", "l0"):
        assert [r[key] for r in rows] == pytest.approx(norms[key].tolist(), abs=1e-5), key
    assert [r["success"] for r in rows] == [r["success_uint8"] for r in rows]
    budget = {"masked-fgsm": "eps1", "fgsm": "eps", "pgd": "eps", "mifgsm": "eps"}.get(name)
    if budget:  # the saved PNGs keep the Linf budget (0.03 is not a multiple of 1/255)
        assert norms["linf"].max() <= ATTACKS[name].options()[budget].default + 1e-6
    err = capsys.readouterr().err
    assert (f"{len(lost)} of 4 saved adversarial PNGs are not adversarial" in err) == bool(lost)
    page = (out / "index.html").read_text()
    assert page.count("saved PNG not adversarial") == len(lost)


def test_grid_attacks_make_adversarial_pngs_where_float_succeeds(tmp_path: Path) -> None:
    """With the CLI default (quantize on), every float success of the minimum-norm attacks
    also holds for its saved PNG."""
    for name, opts in (("region-ddn", []), ("cw", ["steps=100", "lr=0.05"]), ("pgd", [])):
        out = tmp_path / name
        extra = [a for o in opts for a in ("--opt", o)]
        assert main(["-q", "attack", "--n", "8", "--attack", name, *extra, "--out", str(out)]) == 0
        rows = _rows(out)
        assert any(r["success"] for r in rows)
        assert all(r["success_uint8"] for r in rows if r["success"]), name


def test_float_region_ddn_is_named_when_its_pngs_are_not_adversarial(tmp_path: Path) -> None:
    """A float attack given to ``attack_dataset`` (quantize=False): the float results stop at
    the boundary and most PNGs lose; the count, the names and the page say so."""
    out = tmp_path / "float"
    data = samples(8)
    attack = fcrattack.RegionDDN(fcrattack.default_model(), quantize=False)
    with pytest.warns(FcrattackWarning, match="region-ddn: .* of 8 saved") as caught:
        attack_dataset(attack, data, out, quiet=True)
    rows = _rows(out)
    lost = [r["id"] for r in rows if r["success"] and not r["success_uint8"]]
    assert lost, "expected float-only successes without quantize"
    message = str(caught[0].message)
    assert f"{len(lost)} of 8 saved" in message and lost[0] in message
    assert json.loads((out / "summary.json").read_text())["png_not_adversarial"]["ids"] == lost
    page = (out / "index.html").read_text()
    assert page.count("saved PNG not adversarial") == sum(
        r["index"] < 20 for r in rows if r["id"] in lost
    )


def test_to_grid_keeps_budgets_and_lands_on_8_bits() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (4, 3, 8, 8), generator=gen).float() / 255
    eps = 0.03  # not a multiple of 1/255
    x_adv = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps).clamp(0, 1)
    q = to_grid(x, x_adv)
    assert torch.equal(quantize_uint8(q), q)
    assert (q - x).abs().max() <= eps + 1e-6  # the Linf box holds
    assert ((q - x).abs() <= (x_adv - x).abs() + 1e-6).all()  # no value moves further
    off = torch.rand(2, 3, 4, 4, generator=gen)  # clean values off the grid stay nearest
    assert torch.equal(to_grid(off, off), quantize_uint8(off))


def test_python_default_stays_float_and_quantize_makes_uint8_results() -> None:
    data = samples(8)
    model = fcrattack.default_model()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FcrattackWarning)
        plain = fcrattack.RegionDDN(model).run(data.images, data.labels, ids=data.ids)
        grid = fcrattack.RegionDDN(model, quantize=True).run(data.images, data.labels, ids=data.ids)
    assert (quantize_uint8(grid.x_adv) - grid.x_adv).abs().max() < 1e-6  # on the grid
    assert torch.equal(grid.success, grid.success_uint8) and grid.success.any()
    assert (plain.success & ~plain.success_uint8).any()  # what the CLI default avoids


def test_readme_photo_example_saves_adversarial_pngs(tmp_path: Path) -> None:
    """The README's first command line (the default attack on sample photos with
    EfficientNet-Lite0, the default 100 steps), on 2 photos: every PNG re-read from disk and
    classified again is adversarial, and the perturbation is small."""
    pytest.importorskip("efficientnet_lite_pytorch", reason="needs the imagenet extra")
    photos = _need(IMAGENET_SAMPLES)
    out = tmp_path / "photos"
    argv = ["-q", "attack", "--model", "efficientnet-lite0", "--data", str(photos)]
    assert main([*argv, "--n", "2", "--out", str(out)]) == 0
    rows = _rows(out)
    assert [r["attack"] for r in rows] == ["region-ddn"] * 2
    model = fcrattack.load_model("efficientnet-lite0")
    pngs = [np.array(Image.open(out / r["adv_png"]).convert("RGB")) for r in rows]
    x = torch.from_numpy(np.stack(pngs)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        pred = model(x).argmax(1)
    assert all(r["clean_correct"] for r in rows)
    assert (pred != torch.tensor([r["label"] for r in rows])).all()
    assert all(r["l2"] < 1.0 and r["psnr"] > 50 for r in rows)


@pytest.mark.parametrize("name", ["pgdl2", "region-ddn", "cw"])
def test_float_results_are_recorded_as_their_saved_pngs(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Regression: with ``--opt quantize=false`` the records held the norms of float images
    that were never saved (PGD-L2: L2 1.0000 recorded, 1.0033 in the PNG, over eps = 1), and
    the float image's prediction. The command line now refuses it; ``attack_dataset`` given a
    float attack records the PNGs' norms."""
    opts = [a for o in [*FAST[name], "quantize=false"] for a in ("--opt", o)]
    argv = ["-q", "attack", "--n", "4", "--attack", name, *opts, "--out", str(tmp_path / "cli")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--opt quantize=false is refused" in err[0], err
    assert not (tmp_path / "cli").exists()
    out = tmp_path / name
    values = dict(o.split("=") for o in FAST[name])
    attack = fcrattack.build(name, fcrattack.default_model(), **parse_options(name, values))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FcrattackWarning)  # PNGs that lost: named, tested above
        attack_dataset(attack, samples(4), out, quiet=True)
    rows = _rows(out)
    clean = samples()
    x = clean.images[[clean.ids.index(r["id"]) for r in rows]]
    norms = fcrattack.metrics.perturbation_norms(x, _pngs(out, rows))
    for key in ("l2", "linf", "l0", "l0_pixels", "psnr"):  # JSON's null: an unchanged image
        recorded = [math.inf if r[key] is None else r[key] for r in rows]
        assert recorded == pytest.approx(norms[key].tolist(), abs=1e-5), key
    pred = _png_predictions(out, rows)
    assert [bool(p != r["label"]) for p, r in zip(pred, rows)] == [r["success_uint8"] for r in rows]
