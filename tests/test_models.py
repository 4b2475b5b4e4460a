"""Models: the real akamaster CIFAR-10 ResNets, every registered architecture, the
normalisation wrapper, safe checkpoint loading and the eval-mode context manager."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import CIFAR_JPEG, _need, akamaster_weights
from fcrattack import FcrattackWarning
from fcrattack.data import cifar10
from fcrattack.models import (
    ARCHITECTURES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    IMAGENET_MEAN,
    IMAGENET_STD,
    Normalized,
    create_model,
    efficientnet_lite0,
    load_checkpoint,
)
from fcrattack.models.cifar_resnet import CifarResNet
from fcrattack.models.mode import eval_mode

# ---------------------------------------------------------------- real pretrained weights


@pytest.mark.parametrize("depth", [20, 32])
def test_akamaster_loads_strictly(depth: int) -> None:
    path = akamaster_weights(depth)
    raw = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert all(k.startswith("module.") for k in raw)
    state = {k.removeprefix("module."): v for k, v in raw.items()}
    net = CifarResNet(depth)
    net.load_state_dict(state, strict=True)  # the architecture matches the file exactly
    assert len(net.layer1) == (depth - 2) // 6

    model = load_checkpoint(path, f"resnet{depth}")
    assert isinstance(model, Normalized) and not model.training
    assert not any(m.training for m in model.modules())
    assert torch.allclose(model.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    assert torch.allclose(model.std.flatten(), torch.tensor(IMAGENET_STD))
    loaded = model.model.state_dict()
    # the 2017 file predates BatchNorm's num_batches_tracked buffer; everything else matches
    assert {k for k in loaded if not k.endswith("num_batches_tracked")} == state.keys()
    for k, v in state.items():
        assert torch.equal(loaded[k], v), k


def test_checkpoint_of_another_depth_is_rejected_in_one_line(resnet_checkpoint) -> None:
    """Regression: a checkpoint of another architecture raised torch's multi-line
    RuntimeError (a raw traceback from the CLI)."""
    with pytest.raises(ValueError, match="does not fit architecture 'resnet20'") as info:
        load_checkpoint(resnet_checkpoint(32), "resnet20")
    assert "\n" not in str(info.value) and "unexpected keys (e.g. layer1.3" in str(info.value)


@pytest.fixture(scope="module")
def cifar_test_full():
    """All 10,000 JPEG CIFAR-10 test images."""
    return cifar10(_need(CIFAR_JPEG, "all 10,000 test images"), "test")


@pytest.mark.slow
@pytest.mark.parametrize(("depth", "expected"), [(20, 81.0), (32, 82.6)])
def test_akamaster_accuracy_on_jpeg_test_split(
    cifar_test_full, depth: int, expected: float
) -> None:
    data = cifar_test_full
    assert len(data) == 10_000 and torch.bincount(data.labels).tolist() == [1000] * 10
    model = load_checkpoint(akamaster_weights(depth), f"resnet{depth}")
    correct = 0
    batch = 100  # measured: half the CPU time of batches of 1000 (activations stay in cache)
    with torch.no_grad():
        for i in range(0, len(data), batch):
            pred = model(data.images[i : i + batch]).argmax(1)
            correct += int((pred == data.labels[i : i + batch]).sum())
    acc = 100.0 * correct / len(data)
    print(f"ResNet-{depth} (akamaster) on the 10,000 JPEG test images: {acc:.2f} %")
    assert abs(acc - expected) <= 1.0


# ---------------------------------------------------------------- weights trained here


def test_shipped_vgg11_weights_hash_and_strict_load() -> None:
    """The VGG-11 of the repository's weight package: the file its README names (sha256),
    loaded strictly."""
    import hashlib

    package = pytest.importorskip(
        "fcrattack_weights_cifar10_vgg",
        reason="needs the VGG-11 weights package (pip install ./weights/cifar10-vgg)",
    )
    from fcrattack import load_model

    name, sha256 = package.WEIGHTS["vgg11-cifar10"]
    path = package.path("vgg11-cifar10")
    assert path.name == name and hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    assert sha256 in (Path(package.__file__).parents[2] / "README.md").read_text()
    model = load_model("vgg11-cifar10")
    assert model.info.dataset == "cifar10" and model.info.cam_layer == "model.features.27"


def test_shipped_vgg11_accuracy_on_500_jpeg_test_images() -> None:
    """444 (+-2) of the 500 images of the seed-0 JPEG test subset (88.8 %; 87.07 % on all
    10,000, measured for the README)."""
    pytest.importorskip(
        "fcrattack_weights_cifar10_vgg",
        reason="needs the VGG-11 weights package (pip install ./weights/cifar10-vgg)",
    )
    from fcrattack import load_model

    data = cifar10(_need(CIFAR_JPEG, "500 test images"), "test", n=500, seed=0)
    model = load_model("vgg11-cifar10")
    with torch.no_grad():
        correct = sum(
            int((model(data.images[i : i + 100]).argmax(1) == data.labels[i : i + 100]).sum())
            for i in range(0, 500, 100)
        )
    assert abs(correct - 444) <= 2  # 444 here; float order may flip a borderline image


def test_shipped_weights_without_their_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from fcrattack import load_model

    monkeypatch.setitem(sys.modules, "fcrattack_weights_cifar10_vgg", None)  # import fails
    with pytest.raises(ImportError, match=r"pip install \./weights/cifar10-vgg"):
        load_model("vgg11-cifar10")


# ---------------------------------------------------------------- every architecture


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
def test_every_architecture_builds_and_runs(arch: str) -> None:
    torch.manual_seed(0)
    model = create_model(arch).eval()
    assert isinstance(model, Normalized)
    assert torch.allclose(model.mean.flatten(), torch.tensor(CIFAR10_MEAN))
    assert torch.allclose(model.std.flatten(), torch.tensor(CIFAR10_STD))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    cam_layer = "model." + ARCHITECTURES[arch].cam_layer
    feats: list[torch.Tensor] = []
    handle = dict(model.named_modules())[cam_layer].register_forward_hook(
        lambda m, i, o: feats.append(o)
    )
    with torch.no_grad():
        out = model(x)
        out_swapped = model(x.flip(0))
    handle.remove()
    assert out.shape == (2, 10) and out.dtype == torch.float32
    assert torch.isfinite(out).all()
    assert not torch.equal(out[0], out[1])  # logits depend on the image (tiny for deep VGGs)
    assert torch.allclose(out_swapped, out.flip(0), atol=1e-5)  # per-image, no batch mixing
    # the registered Grad-CAM layer is a real feature map (not the 1x1 pooled output)
    assert feats[0].dim() == 4 and feats[0].shape[0] == 2
    assert feats[0].shape[2] * feats[0].shape[3] > 1, (cam_layer, tuple(feats[0].shape))

    other = create_model(arch, num_classes=7).eval()
    with torch.no_grad():
        assert other(x).shape == (2, 7)


def test_efficientnet_lite0_without_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails
    with pytest.raises(ImportError, match="pip install efficientnet-lite-pytorch==0.1.0"):
        efficientnet_lite0()


def test_unknown_architecture() -> None:
    with pytest.raises(ValueError, match="unknown architecture"):
        create_model("resnet21")


# ---------------------------------------------------------------- Normalized


class _Affine(nn.Module):
    """A known function of the normalised input: sum over pixels per channel."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z.sum((2, 3))


def test_normalized_matches_hand_computation() -> None:
    mean, std = (0.5, 0.25, 0.0), (0.5, 2.0, 0.1)
    x = torch.tensor([[[[0.0, 1.0]], [[0.25, 0.75]], [[0.3, 0.6]]]])  # (1, 3, 1, 2)
    model = Normalized(nn.Identity(), mean, std)
    out = model(x)
    expected = torch.tensor(
        [
            [
                [[(0.0 - 0.5) / 0.5, (1.0 - 0.5) / 0.5]],
                [[(0.25 - 0.25) / 2.0, (0.75 - 0.25) / 2.0]],
                [[0.3 / 0.1, 0.6 / 0.1]],
            ]
        ]
    )
    assert torch.allclose(out, expected)
    assert torch.allclose(out[0, :, 0, 0], torch.tensor([-1.0, 0.0, 3.0]))
    summed = Normalized(_Affine(), mean, std)(x)
    assert torch.allclose(summed, torch.tensor([[0.0, 0.25, 9.0]]))
    # the buffers travel with the module
    assert set(dict(model.named_buffers())) == {"mean", "std"}
    with pytest.raises(ValueError, match="positive"):
        Normalized(nn.Identity(), (0.5,), (0.0,))
    with pytest.raises(ValueError, match="one per input channel"):
        Normalized(nn.Identity(), (0.5, 0.5), (1.0,))


# ---------------------------------------------------------------- checkpoints


_UNPICKLED: list[str] = []


def _record_unpickle() -> _Payload:
    _UNPICKLED.append("code ran")
    return _Payload.__new__(_Payload)


class _Payload:
    """A custom object in a checkpoint; unpickling it would call code of ours."""

    def __reduce__(self) -> tuple:
        return (_record_unpickle, ())


def test_load_checkpoint_refuses_pickled_code(tmp_path: Path) -> None:
    net = create_model("resnet20")
    path = tmp_path / "evil.pt"
    torch.save({"arch": "resnet20", "state_dict": net.state_dict(), "extra": _Payload()}, path)
    _UNPICKLED.clear()
    with pytest.raises(ValueError, match="weights_only") as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value)
    assert _UNPICKLED == []  # nothing from the file ran


def test_load_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt", "resnet20")
    bare = tmp_path / "bare.pt"
    net = CifarResNet(20)
    torch.save(net.state_dict(), bare)
    with pytest.raises(ValueError, match="arch"):
        load_checkpoint(bare)
    model = load_checkpoint(bare, "resnet20")
    for k, v in net.state_dict().items():
        assert torch.equal(model.model.state_dict()[k], v)
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a dict"):
        load_checkpoint(tmp_path / "list.pt", "resnet20")
    # files that are no checkpoint at all say so, not that they could not be read safely
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a file that torch.save writes"):
        load_checkpoint(tmp_path / "junk.pt", "resnet20")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="an empty file"):
        load_checkpoint(tmp_path / "empty.pt", "resnet20")
    (tmp_path / "cut.pt").write_bytes(bare.read_bytes()[:300])
    with pytest.raises(ValueError, match="damaged file") as exc:
        load_checkpoint(tmp_path / "cut.pt", "resnet20")
    assert "weights_only" not in str(exc.value) and "\n" not in str(exc.value)


def test_bare_state_dict_of_a_wrapped_model(tmp_path: Path) -> None:
    torch.manual_seed(4)
    model = create_model("resnet20", mean=(0.3, 0.4, 0.5), std=(0.5, 0.5, 0.5)).eval()
    torch.save(model.state_dict(), tmp_path / "wrapped.pt")  # keys model.*, mean, std
    loaded = load_checkpoint(tmp_path / "wrapped.pt", "resnet20")
    assert torch.allclose(loaded.mean.flatten(), torch.tensor([0.3, 0.4, 0.5]))
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)


def test_own_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = create_model("resnet20", mean=(0.4, 0.5, 0.6), std=(0.2, 0.3, 0.4)).eval()
    path = tmp_path / "own.pt"
    torch.save(
        {
            "arch": "resnet20",
            "state_dict": model.state_dict(),
            "num_classes": 10,
            "mean": [0.4, 0.5, 0.6],
            "std": [0.2, 0.3, 0.4],
        },
        path,
    )
    loaded = load_checkpoint(path)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-6)
    assert torch.allclose(loaded.std.flatten(), torch.tensor([0.2, 0.3, 0.4]))


# ---------------------------------------------------------------- eval_mode


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Dropout(0.5),
        nn.Sequential(nn.BatchNorm2d(4), nn.Dropout(0.2)),
    )


def _modes(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_eval_mode_restores_mixed_modes() -> None:
    model = _net().train()
    model[3].eval()  # a sub-block frozen in eval mode inside a training model
    model[2].eval()
    before = _modes(model)
    assert True in before and False in before
    with pytest.warns(FcrattackWarning, match="training mode"), eval_mode(model) as m:
        assert m is model
        assert not any(_modes(model))
        x = torch.rand(2, 3, 8, 8)
        assert torch.equal(model(x), model(x))  # deterministic inside
    assert _modes(model) == before

    # the reverse mix, and restoration after an exception
    model = _net().eval()
    model[1].train()
    before = _modes(model)
    with pytest.raises(RuntimeError, match="boom"), eval_mode(model, warn=False):
        assert not any(_modes(model))
        raise RuntimeError("boom")
    assert _modes(model) == before


def test_eval_mode_quiet_for_eval_models() -> None:
    model = _net().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FcrattackWarning)
        with eval_mode(model):
            pass
    assert not any(_modes(model))


# ---------------------------------------------------------------- what a model returns


class _IntegerLogits(nn.Module):
    """A classifier whose scores come out rounded to integers (no gradient through them)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.net(x) * 100).round().long()


INT_FACTORY = """
from fcrattack.models import default_model
from test_models import _IntegerLogits

def make():
    return _IntegerLogits(default_model())
"""


def test_integer_logits_are_one_clear_error_at_every_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import fcrattack
    import fcrattack.app.demo
    from fcrattack.cli import main
    from fcrattack.data import samples
    from fcrattack.models import default_model

    data = samples(4)
    raw = _IntegerLogits(default_model())
    message = "floating-point logits, got torch.int64"
    for name in ("pgd", "fcr", "cw", "onepixel"):  # the Python API, an unwrapped module
        with pytest.raises(ValueError, match=message):
            fcrattack.build(name, raw).run(data.images, data.labels)
    with pytest.raises(ValueError, match=message):
        fcrattack.gradcam(raw, data.images, data.labels)
    wrapped = Normalized(_IntegerLogits(default_model().model), CIFAR10_MEAN, CIFAR10_STD)
    with pytest.raises(ValueError, match=message):
        wrapped(data.images)  # every model of load_model is wrapped: checked at its output
    (tmp_path / "int_factory.py").write_text(INT_FACTORY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    monkeypatch.setattr(fcrattack.app.demo, "default_model", lambda: wrapped)
    runs = [
        ["attack", "--model", "py:int_factory:make", "--n", "4", "--out", str(tmp_path / "a")],
        ["cam", "--model", "py:int_factory:make", "--n", "4", "--out", str(tmp_path / "c")],
        ["demo", "--n", "2", "--out", str(tmp_path / "d")],
    ]
    capsys.readouterr()  # what the API calls logged
    for argv in runs:
        assert main(["-q", *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)
