"""Regression tests for defects a review found in the user-model/user-image paths; each failed
on the code before its fix (real CIFAR-10 and ImageNet images from ../shared)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CIFAR_JPEG, IMAGENET_SAMPLES, _need
from fcrattack.cli import main
from fcrattack.data import list_imagenet, match_classes, read_images, resize_center_crop
from fcrattack.data.listing import list_flat_folder
from fcrattack.models import imagenet_classes, load_model

pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
]


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


#: a small network with ImageNet's 1,000 outputs, for the label-space paths (``py:`` form)
THOUSAND = """
from torch import nn


def make():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1000)
    )
"""


def _imagenet_model(folder: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``--model`` arguments of a 1,000-class model with ImageNet's class names (a module in
    ``folder``, made importable by running from there)."""
    (folder / "thousand.py").write_text(THOUSAND)
    monkeypatch.chdir(folder)
    return ["--model", "py:thousand:make", "--classes", "imagenet"]


def _pets(root: Path, n: int = 2) -> Path:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for k in range(n):
            shutil.copy(_need(CIFAR_JPEG) / "test" / name / f"{k:04d}.jpg", root / name)
    return root


def test_target_with_targeted_true_is_not_a_duplicate_keyword(tmp_path: Path) -> None:
    args = ["-q", "attack", "--attack", "pgd", "--n", "2", "--opt", "steps=2"]
    assert main([*args, "--opt", "targeted=true", "--target", "3", "--out", str(tmp_path)]) == 0
    assert all(r["target"] == 3 for r in _rows(tmp_path))


def test_target_index_out_of_range_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["-q", "attack", "--target", "12", "--out", str(tmp_path / "o")]) == 2
    assert "10 classes (0 to 9)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_partial_imagenet_val_folder_is_labelled_by_wordnet_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two class folders of val/ (no classes.json) were labelled 0 and 1 by sorted order."""
    wnids = ["n01443537", "n01484850"]  # goldfish = 1, great white shark = 2
    for w in wnids:
        shutil.copytree(_need(IMAGENET_SAMPLES) / "val" / w, tmp_path / "val" / w)
    ids, names = imagenet_classes()
    listing = list_imagenet(
        tmp_path, transform=resize_center_crop(32, 32), classes=names, wnids=ids
    )
    assert listing.labels == [1, 2]
    out = tmp_path / "o"
    model = _imagenet_model(tmp_path, monkeypatch)
    args = ["-q", "attack", *model, "--dataset", "imagenet", "--size", "32"]
    assert main([*args, "--data", str(tmp_path), "--attack", "fgsm", "--out", str(out)]) == 0
    assert [r["label"] for r in _rows(out)] == [1, 2]


def test_test_folder_of_a_model_without_class_names_is_not_read_as_cifar10(
    tmp_path: Path,
) -> None:
    """DIR/test/{cat,dog} with a model that has no class names was labelled 3 and 5 (CIFAR-10's
    indices); the docs promise sorted folder order: 0 and 1."""
    _pets(tmp_path / "data" / "test")
    model = load_model("default")
    torch.jit.trace(model, torch.rand(1, 3, 32, 32)).save(str(tmp_path / "m.ts"))
    out = tmp_path / "o"
    spec = f"torchscript:{tmp_path / 'm.ts'}"
    data = tmp_path / "data"
    assert main(["-q", "attack", "--model", spec, "--data", str(data), "--attack", "fgsm",
                 "--out", str(out)]) == 0  # fmt: skip
    assert [r["label"] for r in _rows(out)] == [0, 0, 1, 1]


def test_bundled_samples_are_refused_for_a_model_of_other_classes(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = _imagenet_model(tmp_path, monkeypatch)
    assert main(["-q", "attack", *model, "--out", str(tmp_path / "a")]) == 2
    assert "bundled samples are CIFAR-10 images" in capsys.readouterr().err
    assert main(["-q", "attack", "--size", "64", "--out", str(tmp_path / "b")]) == 2
    assert "--size resizes image files" in capsys.readouterr().err


def test_resize_none_leaves_imagenet_photos_uncropped(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    for d in sorted((_need(IMAGENET_SAMPLES) / "val").iterdir())[:3]:
        shutil.copytree(d, tmp_path / "val" / d.name)
    model = _imagenet_model(tmp_path, monkeypatch)
    args = ["-q", "attack", *model, "--dataset", "imagenet", "--resize", "none"]
    assert main([*args, "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "different sizes" in capsys.readouterr().err


def test_sixteen_bit_and_rotated_images_decode_as_they_look(tmp_path: Path) -> None:
    with Image.open(_need(CIFAR_JPEG) / "test" / "cat" / "0000.jpg") as img:
        rgb = np.asarray(img.convert("RGB"))
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(tmp_path / "deep.png")  # mode I;16
    rotated = Image.fromarray(rgb).rotate(-90, expand=True)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... with the orientation tag that turns it back upright
    rotated.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    images, kept, _ = read_images([tmp_path / "deep.png", tmp_path / "phone.jpg"])
    assert kept == [0, 1]
    deep = images[0, 0].numpy().astype(int)
    assert np.abs(deep - grey // 257).max() <= 1  # not clipped to white
    upright = images[1].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(upright - rgb.astype(int)).mean() < 8  # JPEG noise only


def test_decompression_bomb_is_skipped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("0000", "0001"):
        shutil.copy(_need(CIFAR_JPEG) / "test" / "cat" / f"{name}.jpg", tmp_path / f"{name}.jpg")
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 200 x 200 > 2 x 2000: a "bomb"
    with caplog.at_level(logging.WARNING, logger="fcrattack"):
        data = list_flat_folder(tmp_path, labels="pred").read()
    assert data.ids == ["0000.jpg", "0001.jpg"] and [Path(s).name for s in data.skipped] == [
        "big.png"
    ]


def test_label_files_with_a_byte_order_mark_and_folders_in_keys(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("0000", "0001"):
        shutil.copy(_need(CIFAR_JPEG) / "test" / "dog" / f"{name}.jpg", photos / f"{name}.jpg")
    (tmp_path / "labels.csv").write_text(
        "file,label\nphotos/0000.jpg,dog\n0001.jpg,5\n", encoding="utf-8-sig"
    )
    listing = list_flat_folder(
        photos, labels=tmp_path / "labels.csv", classes=["cat", "x", "y", "z", "w", "dog"]
    )
    assert listing.labels == [5, 5]


def test_exact_class_name_wins_over_a_normalised_twin() -> None:
    names = imagenet_classes()[1]
    assert match_classes(["Cardigan", "cardigan"], names) == [264, 474]
    with pytest.raises(ValueError, match="names 2 of the model's classes"):
        match_classes(["CARDIGAN"], names)


def test_py_factory_with_wrong_arguments_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "factories.py").write_text(
        "from fcrattack.models import default_model\n\ndef net():\n    return default_model()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="py:factories:net.*unexpected keyword"):
        load_model("py:factories:net?depth=3")
