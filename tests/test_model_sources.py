"""Every model spec of ``fcrattack.load_model`` on real saved models: names, checkpoints,
``py:``, ``torchscript:``, ``export:``; ``torchvision:`` and ``timm:`` against small stand-in
packages put on ``sys.path`` here (and for real where the packages and cached weights exist)."""

from __future__ import annotations

import importlib.util
import io
import json
import logging
import pickle
import struct
import sys
import textwrap
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import fcrattack
from fcrattack.data import CIFAR10_CLASSES, samples
from fcrattack.models import (
    ModelInfo,
    Normalized,
    create_model,
    imagenet_classes,
    load_checkpoint,
    load_model,
)
from fcrattack.viz import save_png

X = samples(8).images
Y = samples(8).labels


#: TorchScript and torch.export are used on purpose (users' saved models)
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning"),
    pytest.mark.filterwarnings("ignore:`isinstance\\(treespec:FutureWarning"),
]


def _same_predictions(a: torch.nn.Module, b: torch.nn.Module) -> None:
    with torch.no_grad():
        torch.testing.assert_close(a(X), b(X), rtol=1e-4, atol=1e-4)


def test_default_and_checkpoint_info(resnet_checkpoint) -> None:
    model = load_model("default")
    assert model.info == ModelInfo(
        "default", 32, 32, tuple(CIFAR10_CLASSES), None, "model.layer3", "cifar10"
    )
    assert fcrattack.find_layer(model, X) == "model.layer3"
    path = resnet_checkpoint(20)
    ckpt = load_model(str(path), arch="resnet20")
    assert ckpt.info is not None and ckpt.info.classes == tuple(CIFAR10_CLASSES)
    assert ckpt.info.input_size == 32 and ckpt.info.source == str(path)


def test_overrides_size_and_classes(tmp_path: Path) -> None:
    names = tmp_path / "names.txt"
    names.write_text("\n".join(f"c{i}" for i in range(10)) + "\n")
    model = load_model("default", size=48, classes=str(names))
    assert model.info is not None and model.info.input_size == 48
    assert model.info.resize_size is None
    assert model.info.classes == tuple(f"c{i}" for i in range(10))
    _write_module(tmp_path, "thousand", THOUSAND)
    sys.path.insert(0, str(tmp_path))
    try:
        imagenet = load_model("py:thousand:make", classes="imagenet")
    finally:
        sys.path.remove(str(tmp_path))
    assert imagenet.info is not None and imagenet.info.wnids == imagenet_classes()[0]


THOUSAND = """
import torch

def make():
    return torch.nn.Sequential(
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(3, 1000)
    )
"""


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        (["cat", "dog", "bird"], "3 class names for a model with 10 outputs"),
        (("a",) * 11, "11 class names for a model with 10 outputs"),
        ("imagenet", "1000 class names for a model with 10 outputs"),
        ([], "gives no class names"),
        (["a", ""], "non-empty strings, got ''"),
        ([1] * 10, "non-empty strings, got 1"),
    ],
)
def test_class_names_must_name_every_output(classes: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_model("default", classes=classes)  # type: ignore[arg-type]


def test_class_names_of_another_count_are_caught_at_the_output_too() -> None:
    model = load_model("default")
    model.info = replace(model.info, classes=("a", "b"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="returns 10 scores per image but has 2 class names"):
        model(X[:1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": 0}, "size must be a positive number of pixels, got 0"),
        ({"size": -32}, "size must be a positive"),
        ({"size": True}, "size must be a positive"),
        ({"mean": (0.5, 0.5), "std": (0.5, 0.5)}, "mean has 2 values: give one per input channel"),
        ({"mean": (0.5,) * 3, "std": (0.5,)}, "mean has 3 values but std has 1"),
    ],
)
def test_bad_overrides_are_refused_naming_them(kwargs: dict, match: str, resnet_checkpoint) -> None:
    spec = str(resnet_checkpoint(20)) if "mean" in kwargs else "default"
    extra = {"arch": "resnet20"} if "mean" in kwargs else {}
    with pytest.raises(ValueError, match=match):
        load_model(spec, **extra, **kwargs)


def _write_module(root: Path, name: str, source: str) -> None:
    (root / f"{name}.py").write_text(textwrap.dedent(source))


def test_py_factory_returns_bare_net_or_wrapped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resnet_checkpoint
) -> None:
    path = resnet_checkpoint(20)
    _write_module(
        tmp_path,
        "my_models",
        """
        import torch
        from fcrattack.models import load_checkpoint

        def bare(path, depth=20):
            assert isinstance(depth, int)  # query values are Python literals
            return load_checkpoint(path, f"resnet{depth}").model

        def wrapped(path):
            return load_checkpoint(path, "resnet20")

        def not_a_model():
            return 42
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    reference = load_checkpoint(path, "resnet20")
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    bare = load_model(f"py:my_models:bare?path={path}&depth=20", mean=mean, std=std)
    _same_predictions(bare, reference)
    assert bare.info == ModelInfo(f"py:my_models:bare?path={path}&depth=20")
    wrapped = load_model(f"py:my_models:wrapped?path={path}")
    _same_predictions(wrapped, reference)
    assert wrapped.info is not None and wrapped.info.classes == tuple(CIFAR10_CLASSES)
    with pytest.raises(ValueError, match="already normalises"):
        load_model(f"py:my_models:wrapped?path={path}", mean=mean, std=std)
    with pytest.raises(ValueError, match="not a torch.nn.Module"):
        load_model("py:my_models:not_a_model")
    with pytest.raises(ValueError, match="no attribute"):
        load_model("py:my_models:missing")
    with pytest.raises(ValueError, match="expected py:package.module:callable"):
        load_model("py:my_models")
    with pytest.raises(ValueError, match="bad argument"):
        load_model("py:my_models:bare?oops")
    with pytest.raises(ValueError, match="importing no_such_module_here raised Module") as exc:
        load_model("py:no_such_module_here:f")
    assert isinstance(exc.value.__cause__, ModuleNotFoundError)
    with pytest.raises(ValueError, match="not a file path: .* write py:my_models:bare"):
        load_model("py:mods/my_models.py:bare")  # regression: "No module named 'mods/...'"


def test_torchscript_file(tmp_path: Path) -> None:
    model = load_model("default")
    torch.jit.trace(model, X[:1]).save(str(tmp_path / "whole.ts"))  # normalises inside
    torch.jit.trace(model.model, X[:1]).save(str(tmp_path / "bare.ts"))
    whole = load_model(f"torchscript:{tmp_path / 'whole.ts'}")
    _same_predictions(whole, model)
    bare = load_model(
        f"torchscript:{tmp_path / 'bare.ts'}",
        mean=model.mean.flatten().tolist(),
        std=model.std.flatten().tolist(),
    )
    _same_predictions(bare, model)
    # attacks that need no Grad-CAM work; Grad-CAM says why it cannot
    result = fcrattack.build("pgd", whole, steps=3).run(X, Y)
    assert result.success.float().mean() > 0.5
    with pytest.raises(ValueError, match="TorchScript"):
        fcrattack.gradcam(whole, X, Y)
    with pytest.raises(FileNotFoundError, match="file not found"):
        load_model(f"torchscript:{tmp_path / 'missing.ts'}")
    with pytest.raises(ValueError, match="both mean and std"):
        load_model(f"torchscript:{tmp_path / 'bare.ts'}", mean=(0.5, 0.5, 0.5))


def test_export_file_keeps_layers_for_gradcam(tmp_path: Path) -> None:
    model = load_model("default")
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (X[:2],), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(tmp_path / "model.pt2"))
    loaded = load_model(f"export:{tmp_path / 'model.pt2'}")
    _same_predictions(loaded, model)
    torch.testing.assert_close(fcrattack.gradcam(loaded, X, Y), fcrattack.gradcam(model, X, Y))
    result = fcrattack.build("fcr", loaded, steps=3).run(X, Y)
    reference = fcrattack.build("fcr", model, steps=3).run(X, Y)
    torch.testing.assert_close(result.x_adv, reference.x_adv, rtol=1e-4, atol=1e-4)


def test_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        load_model("nope")
    with pytest.raises(ValueError, match="checkpoint files only"):
        load_model("default", arch="resnet20")
    with pytest.raises(ValueError, match="normalises its input itself"):
        load_model("default", mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(ValueError, match="takes its normalisation from its weights"):
        load_model("torchvision:resnet18", mean=(0, 0, 0), std=(1, 1, 1))
    with pytest.raises(FileNotFoundError, match="class names"):
        load_model("default", classes=str(tmp_path / "missing.txt"))


# --- torchvision and timm: the resolution logic against stand-in packages --------------------

TORCHVISION_STANDIN = """
import enum
import torch
from torch import nn

class _Pre:
    crop_size = [40]
    resize_size = [48]
    mean = [0.5, 0.4, 0.3]
    std = [0.2, 0.25, 0.3]

def _net():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, NUM))

class TinyNet_Weights(enum.Enum):
    V1 = "https://example.invalid/models/tinynet-v1.pth"
    DEFAULT = "https://example.invalid/models/tinynet-v1.pth"

    @property
    def url(self):
        return self.value

    @property
    def meta(self):
        return {"categories": CATEGORIES}

    def transforms(self):
        return _Pre()

def get_model_weights(name):
    if name != "tinynet":
        raise ValueError(f"Unknown model {name}")
    return TinyNet_Weights

def get_model(name, weights=None):
    assert weights is None  # fcrattack reads the weights itself
    return _net()
"""


def _standin_torchvision(root: Path, categories: list[str]) -> None:
    pkg = root / "torchvision"
    (pkg / "models").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    head = f"CATEGORIES = {categories!r}\nNUM = {len(categories)}\n"
    (pkg / "models" / "__init__.py").write_text(head + TORCHVISION_STANDIN)


@pytest.mark.parametrize("num", [10, 1000])
def test_torchvision_spec_with_standin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, num: int
) -> None:
    categories = list(CIFAR10_CLASSES) if num == 10 else list(imagenet_classes()[1])
    _standin_torchvision(tmp_path / "site", categories)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    for mod in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "torch" / "hub" / "checkpoints" / "tinynet-v1.pth"
    with pytest.raises(FileNotFoundError, match="never downloads") as err:
        load_model("torchvision:tinynet")
    assert str(cache) in str(err.value)

    import torchvision.models as tvm  # the stand-in

    trained = tvm.get_model("tinynet")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1)  # weights that differ from a fresh build
    cache.parent.mkdir(parents=True)
    torch.save(trained.state_dict(), cache)
    model = load_model("torchvision:tinynet:V1")
    assert isinstance(model, Normalized) and not model.training
    for (k, a), b in zip(model.model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), k
    assert model.mean.flatten().tolist() == pytest.approx([0.5, 0.4, 0.3])
    assert model.std.flatten().tolist() == pytest.approx([0.2, 0.25, 0.3])
    info = model.info
    assert info is not None and (info.input_size, info.resize_size) == (40, 48)
    assert info.classes == tuple(categories) and info.source == "torchvision:tinynet"
    assert info.dataset == ("imagenet" if num == 1000 else None)
    assert (info.wnids is not None) == (num == 1000)
    with pytest.raises(ValueError, match="no weights 'V9'.*V1"):
        load_model("torchvision:tinynet:V9")
    with pytest.raises(ValueError, match="torchvision has no model 'resnet0'"):
        load_model("torchvision:resnet0")


TIMM_STANDIN = """
import torch
from torch import nn

class _Net(nn.Sequential):
    pass

def create_model(name, pretrained=False):
    assert not pretrained  # fcrattack reads the weights itself, with weights_only=True
    torch.manual_seed(0)
    net = _Net(nn.Conv2d(3, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1000))
    net.pretrained_cfg = {"hf_hub_id": f"timm/{name}", "input_size": (3, 64, 64),
                          "crop_pct": 0.8, "mean": (0.1, 0.2, 0.3), "std": (0.3, 0.2, 0.1),
                          "num_classes": 1000}
    return net
"""

HUB_STANDIN = """
import os
from pathlib import Path

class constants:
    HF_HUB_CACHE = os.environ["HF_HUB_CACHE"]

def try_to_load_from_cache(repo_id, filename):
    path = Path(constants.HF_HUB_CACHE) / repo_id / filename
    return str(path) if path.is_file() else None
"""


def test_timm_spec_with_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "timm.py").write_text(TIMM_STANDIN)
    (site / "huggingface_hub.py").write_text(HUB_STANDIN)
    monkeypatch.syspath_prepend(str(site))
    for mod in [m for m in sys.modules if m.split(".")[0] in ("timm", "huggingface_hub")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError, match=r"timm/tiny.*never downloads"):
        load_model("timm:tiny")
    import timm  # the stand-in

    trained = timm.create_model("tiny")
    with torch.no_grad():
        for p in trained.parameters():
            p.add_(0.1)  # weights that differ from a fresh build
    (tmp_path / "hf" / "timm" / "tiny").mkdir(parents=True)
    torch.save(trained.state_dict(), tmp_path / "hf" / "timm" / "tiny" / "pytorch_model.bin")
    model = load_model("timm:tiny")
    for (k, a), b in zip(model.model.state_dict().items(), trained.state_dict().values()):
        assert torch.equal(a, b), k
    with pytest.raises(ValueError, match="hub specs would download"):
        load_model("timm:hf-hub:timm/tiny")
    assert model.info is not None and (model.info.input_size, model.info.resize_size) == (64, 80)
    assert model.info.classes == imagenet_classes()[1] and model.info.dataset == "imagenet"
    assert model.mean.flatten().tolist() == pytest.approx([0.1, 0.2, 0.3])


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is None, reason="torchvision is not installed"
)
def test_torchvision_for_real() -> None:  # pragma: no cover - only where torchvision exists
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    cached = sorted(hub.glob("resnet18-*.pth")) if hub.is_dir() else []
    if not cached:
        pytest.skip(f"no cached resnet18 weights in {hub}")
    model = load_model("torchvision:resnet18:IMAGENET1K_V1")
    assert model.info is not None and model.info.input_size == 224
    assert json.dumps(model.info.classes[:1]) == '["tench"]'


@pytest.mark.skipif(importlib.util.find_spec("timm") is None, reason="timm is not installed")
def test_timm_for_real() -> None:  # pragma: no cover - only where timm and its cache exist
    try:
        model = load_model("timm:resnet18.a1_in1k")
    except FileNotFoundError as exc:
        pytest.skip(f"no cached weights: {exc}")
    assert model.info is not None and model.info.dataset == "imagenet"
    assert model.info.input_size is not None and model.info.classes is not None


# --- files that would run code, and files that do not load -----------------------------------


class _Opens:
    """Unpickling it opens (creates) a file: what a hostile pickle could do."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple:
        return (open, (self.path, "w"))


def _export(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt2"
    torch.export.save(torch.export.export(load_model("default"), (X[:2],)), str(path))
    return path


def _replace_entry(src: Path, dest: Path, suffix: str, data: bytes) -> None:
    """A copy of the zip archive src with the entry ending in ``suffix`` replaced by data."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dest, "w") as b:
        names = [i.filename for i in a.infolist()]
        assert any(n.endswith(suffix) for n in names), names
        for info in a.infolist():
            b.writestr(info, data if info.filename.endswith(suffix) else a.read(info))


def _torch_saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_export_file_with_a_pickled_payload_is_refused_before_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _export(tmp_path)
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pt2"
    # torch.export.load retries a failed weights_only load of the sample inputs in full
    _replace_entry(good, evil, "sample_inputs/model.pt", _torch_saved({"x": _Opens(marker)}))
    with pytest.raises(ValueError, match="refused") as exc:
        load_model(f"export:{evil}")
    assert not marker.exists()
    assert str(evil) in str(exc.value) and "\n" not in str(exc.value)
    # through the command line: one line, exit 2, nothing created
    from fcrattack.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["-q", "attack", "--model", f"export:{evil}", "--n", "2", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused" in err[0], err
    assert not marker.exists() and not (tmp_path / "o").exists()


def _rewrite(src: Path, dest: Path, change: dict[str, bytes | None]) -> None:
    """A copy of the zip archive src with the entries ending in a key of ``change`` replaced
    by its value (None: left out), and entries named ``+NAME`` added below the root."""
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dest, "w") as b:
        root = a.namelist()[0].partition("/")[0]
        for info in a.infolist():
            key = next((k for k in change if info.filename.endswith(k)), None)
            if key is None:
                b.writestr(info, a.read(info))
            elif change[key] is not None:
                b.writestr(info, change[key])
        for key, data in change.items():
            if key.startswith("+") and data is not None:
                b.writestr(f"{root}/{key[1:]}", data)


def _program(path: Path) -> dict:
    """The program JSON of the export ``path`` (its ``models/*.json`` entry)."""
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(next(n for n in z.namelist() if "/models/" in n)))


def _with_program(good: Path, dest: Path, program: dict | str) -> None:
    """A copy of the export ``good`` at ``dest`` with its program JSON replaced (a dict, or
    the text itself)."""
    with zipfile.ZipFile(good) as z:
        entry = next(n for n in z.namelist() if "/models/" in n)
    text = program if isinstance(program, str) else json.dumps(program)
    _rewrite(good, dest, {"models/" + entry.rsplit("/", 1)[1]: text.encode()})


def _marker_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module ``fcr_spec_module`` on the path whose import creates ``tmp_path/ran``; that
    marker's path (it must never exist)."""
    marker = tmp_path / "ran"
    (tmp_path / "fcr_spec_module.py").write_text(f"open({str(marker)!r}, 'w').close()\nx = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return marker


def _config(path: Path, name: str) -> dict:
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read(next(n for n in z.namelist() if n.endswith(name))))


@pytest.mark.parametrize(
    "case",
    [
        "protocol-0",
        "headerless",
        "json-named",
        "json-constant",
        "two-pickles",
        "case-raw",
        "case-json",
        "nul-name",
        "legacy-raw",
        "outside",
        "custom",
        "aoti",
        "raw-and-pickled",
        "top",
        "twice",
    ],
)
def test_export_file_with_any_unpickled_entry_is_refused_by_role(case: str, tmp_path: Path) -> None:
    """Whatever the bytes look like: an entry torch would unpickle must load with
    weights_only=True, whichever config or folder makes torch read it."""
    good = _export(tmp_path)
    marker = tmp_path / "ran"
    code = f"cos\nsystem\n(S'touch {marker}'\ntR.".encode()  # protocol 0: no header
    weights = _config(good, "model_weights_config.json")
    first = next(iter(weights["config"].values()))
    change: dict[str, bytes | None] = {}
    if case in ("protocol-0", "headerless"):
        first["use_pickle"] = True
        body = code if case == "protocol-0" else pickle.dumps(_Opens(marker), protocol=4)[2:]
        change["data/weights/" + first["path_name"]] = body
    elif case in ("json-named", "two-pickles"):  # a pickled payload named like JSON
        weights["config"]["zz"] = dict(first, path_name="x.json", use_pickle=True)
        harmless = pickle.dumps(119547037146038801333356, protocol=2)
        body = code if case == "json-named" else harmless + pickle.dumps(_Opens(marker), 2)
        change["+data/weights/x.json"] = body
    elif case in ("case-raw", "case-json"):  # torch finds "WZ" as the raw entry "wz"
        name = "wz" if case == "case-raw" else "q.json"
        weights["config"]["raw"] = dict(first, path_name=name, use_pickle=False)
        weights["config"]["zz"] = dict(first, path_name=name.upper(), use_pickle=True)
        change[f"+data/weights/{name}"] = code
    elif case == "nul-name":  # torch's lookup of "wz\0x" ends at the NUL: it reads "wz"
        weights["config"]["raw"] = dict(first, path_name="wz", use_pickle=False)
        weights["config"]["zz"] = dict(first, path_name="wz\u0000x", use_pickle=True)
        change["+data/weights/wz"] = code
    elif case == "legacy-raw":  # torch unpickles data/weights/<model>.pt whatever configs say
        with zipfile.ZipFile(good) as z:
            model = next(n for n in z.namelist() if "/models/" in n).rsplit("/", 1)[1][:-5]
        weights["config"]["raw"] = dict(first, path_name=f"{model}.pt", use_pickle=False)
        change[f"+data/weights/{model}.pt"] = code
    elif case == "json-constant":
        constant = dict(first, path_name="tensor_x.json", use_pickle=True)
        change["model_constants_config.json"] = json.dumps({"config": {"c": constant}}).encode()
        change["+data/constants/tensor_x.json"] = code
    elif case == "outside":  # a raw payload that is really the sample inputs
        first["path_name"] = "../sample_inputs/model.pt"
    elif case == "custom":  # torch unpickles custom-object constants in full
        change["model_constants_config.json"] = json.dumps(
            {"config": {"c": {"path_name": "opaque_obj_0", "use_pickle": True}}}
        ).encode()
        change["+data/constants/opaque_obj_0"] = code
    elif case == "raw-and-pickled":  # one file named raw by one entry, pickled by another
        weights["config"]["zz"] = dict(first, use_pickle=True)
        change["data/weights/" + first["path_name"]] = _torch_saved({"x": _Opens(marker)})
    elif case == "aoti":  # compiled code torch could load beside the program
        change["+data/aotinductor/model/model.json"] = b"{}"
    change["model_weights_config.json"] = json.dumps(weights).encode()
    evil = tmp_path / "evil.pt2"
    _rewrite(good, evil, change)
    if case in ("top", "twice"):  # an entry outside the root; a name twice, the first hostile
        with zipfile.ZipFile(good) as a, zipfile.ZipFile(evil, "w") as b:
            name = next(n for n in a.namelist() if n.endswith("sample_inputs/model.pt"))
            hostile = _torch_saved({"x": _Opens(marker)})
            b.writestr("serialized_state_dict.pt" if case == "top" else name, hostile)
            for info in a.infolist():
                b.writestr(info, a.read(info))
    with pytest.raises(ValueError, match="refused") as exc:
        load_model(f"export:{evil}")
    assert "\n" not in str(exc.value)
    assert not marker.exists()


def _patch_entry(path: Path, entry: str, *, flag: int = 0, method: int | None = None) -> None:
    """Set a general-purpose flag bit or the compression method of ``entry`` in both zip
    headers of ``path`` (what a damaged or foreign archive holds)."""
    data = bytearray(path.read_bytes())
    name = entry.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        size = struct.unpack_from("<H", data, at + 28)[0]
        if bytes(data[at + 46 : at + 46 + size]).endswith(name):
            local = struct.unpack_from("<I", data, at + 42)[0]
            for flags in (at + 8, local + 6):
                struct.pack_into("<H", data, flags, struct.unpack_from("<H", data, flags)[0] | flag)
            if method is not None:
                struct.pack_into("<H", data, at + 10, method)
                struct.pack_into("<H", data, local + 8, method)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("case", ["encrypted", "unknown-method", "corrupt-deflate", "utf8-name"])
def test_damaged_export_archive_is_one_line(
    case: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A .pt2 archive that zipfile cannot read (an encrypted entry, an unknown compression
    method, damaged deflate data) is a one-line error on the command line, with no log
    lines of torch's before it."""
    good = _export(tmp_path)
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(good) as a, zipfile.ZipFile(bad, "w", zipfile.ZIP_DEFLATED) as b:
        for info in a.infolist():
            b.writestr(info.filename, a.read(info))
    if case == "encrypted":
        _patch_entry(bad, "archive_version", flag=1)
    elif case == "unknown-method":
        _patch_entry(bad, "archive_version", method=99)
    elif case == "utf8-name":  # a name flagged UTF-8 whose bytes are not
        _patch_entry(bad, "archive_version", flag=0x800)
        bad.write_bytes(bad.read_bytes().replace(b"archive_version", b"archive_\xffersion"))
    else:
        data = bytearray(bad.read_bytes())
        at = data.find(b"models/model.json") + len("models/model.json") + 40
        data[at : at + 20] = b"\xff" * 20
        bad.write_bytes(bytes(data))
    from fcrattack.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["-q", "attack", "--model", f"export:{bad}", "--n", "2", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"export:{bad}" in err[0], err


@pytest.mark.parametrize("case", ["offset", "prefix", "suffix"])
def test_export_archive_whose_directory_readers_may_disagree_on_is_refused(
    case: str, tmp_path: Path
) -> None:
    """Regression: zipfile (this check) reads the central directory found before the end
    record, torch the one at the offset the end record states; an archive holding two
    directories ran the hidden one's pickle. Any archive where the two places differ (a
    changed offset, bytes before or after the archive) is refused before torch reads it."""
    good = _export(tmp_path)
    data = bytearray(good.read_bytes())
    end = data.rfind(b"PK\x05\x06")
    if case == "offset":  # both end records point 46 bytes into the directory
        struct.pack_into("<I", data, end + 16, struct.unpack_from("<I", data, end + 16)[0] + 46)
        z64 = data.rfind(b"PK\x06\x06")
        struct.pack_into("<Q", data, z64 + 48, struct.unpack_from("<Q", data, z64 + 48)[0] + 46)
    elif case == "prefix":
        data[0:0] = b"JUNK" * 100
    else:
        data += b"trailing bytes"
    bad = tmp_path / "bad.pt2"
    bad.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"export:.*(refused|damaged|not a zip)") as exc:
        load_model(f"export:{bad}")
    assert "\n" not in str(exc.value)
    if case != "suffix":  # zipfile itself finds no end record after trailing bytes
        assert "refused" in str(exc.value)


def test_export_file_that_torch_cannot_read_logs_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """torch logs a traceback when an archive does not deserialise (here: LZMA-compressed
    entries, which zipfile reads and torch does not): only fcrattack's one line reaches the
    user."""
    good = _export(tmp_path)
    bad = tmp_path / "bad.pt2"
    with zipfile.ZipFile(good) as a, zipfile.ZipFile(bad, "w", zipfile.ZIP_LZMA) as b:
        for info in a.infolist():
            b.writestr(info.filename, a.read(info))
    caplog.clear()
    with pytest.raises(ValueError, match="not a loadable torch.export program") as exc:
        load_model(f"export:{bad}")
    assert "\n" not in str(exc.value)
    shown = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not shown, caplog.text


def _renamed(value: object, old: str, new: str) -> object:
    """Parsed JSON with every string equal to ``old`` replaced by ``new``."""
    if isinstance(value, dict):
        return {k: _renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, old, new) for v in value]
    return new if value == old else value


@pytest.mark.parametrize("role", ["input", "buffer", "module-path", "control", "spec-key"])
def test_export_file_with_code_in_a_name_is_refused(role: str, tmp_path: Path) -> None:
    """Regression: torch writes a program's input, node and buffer names into the Python FX
    generates (an input named ``z=exec(...)`` became a default argument that ran while the
    file loaded; a buffer name with a quote, under torch.compile): names must be plain."""
    good = _export(tmp_path)
    marker = tmp_path / "ran"
    program = _program(good)
    signature = program["graph_module"]["signature"]
    user = next(
        s["user_input"]["arg"]["as_tensor"]["name"]
        for s in signature["input_specs"]
        if "user_input" in s
    )
    buffer = next(
        s["parameter"]["parameter_name"] for s in signature["input_specs"] if "parameter" in s
    )
    code = f"exec(\"open('{marker}', 'w')\")"
    old, new = {
        "input": (user, f"z={code}"),
        "buffer": (buffer, f'x"if {code} else "x'),
        "module-path": (buffer.rsplit(".", 1)[0], f"a,{code}"),
        "control": (buffer, f"w\n{code}#"),
        "spec-key": (buffer, buffer),  # the spec is changed below
    }[role]
    if role == "spec-key":  # unflatten writes a spec's dict keys as argument names
        entry_spec = program["graph_module"]["module_call_graph"][0]["signature"]
        spec = json.loads(entry_spec["in_spec"])
        spec[1]["context"] = json.dumps([f"x={code}"])
        entry_spec["in_spec"] = json.dumps(spec)
    text = json.dumps(_renamed(program, old, new))
    if role == "module-path":  # the path inside nn_module_stack strings
        text = text.replace(f",{old},", f",{json.dumps(new)[1:-1]},")
    bad = tmp_path / "bad.pt2"
    _with_program(good, bad, text)
    with pytest.raises(ValueError, match="refused.*(plain name|control character)") as exc:
        load_model(f"export:{bad}")
    assert "\n" not in str(exc.value) and not marker.exists()


@pytest.mark.parametrize("route", ["defaultdict", "enum", "guards"])
def test_export_file_whose_specs_import_a_module_is_refused(
    route: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: torch imports modules a program's pytree specs name while the file loads
    (a defaultdict's default_factory_module, an ``__enum__`` context's fqn): a module beside
    the file ran; and ``guards_code`` is Python that torch runs."""
    marker = _marker_module(tmp_path, monkeypatch)
    good = _export(tmp_path)
    program = _program(good)
    signature = program["graph_module"]["module_call_graph"][0]["signature"]
    leaf = {"type": None, "context": None, "children_spec": []}
    if route == "defaultdict":
        context = {
            "default_factory_module": "fcr_spec_module",
            "default_factory_name": "x",
            "dict_context": ["logits"],
        }
        node = {"type": "collections.defaultdict", "context": context, "children_spec": [leaf]}
        signature["out_spec"] = json.dumps([1, node])
    elif route == "enum":
        spec = json.loads(signature["in_spec"])
        spec[1]["children_spec"][1]["context"] = json.dumps(
            [{"__enum__": 1, "fqn": "fcr_spec_module", "name": "x"}]
        )
        signature["in_spec"] = json.dumps(spec)
    else:
        program["guards_code"] = ["fcr_spec_module"]
    bad = tmp_path / "bad.pt2"
    _with_program(good, bad, program)
    expected = {
        "defaultdict": "'collections.defaultdict' node",
        "enum": "a context that makes torch import a module",
        "guards": "guard 'fcr_spec_module' is not plain shape arithmetic",
    }[route]
    with pytest.raises(ValueError, match=f"refused.*{expected}") as exc:
        load_model(f"export:{bad}")
    assert "\n" not in str(exc.value) and not marker.exists()


def _square_export(
    tmp_path: Path, auto: bool = False, model: torch.nn.Module | None = None
) -> Path:
    """A genuine export with guards: one Dim for height and width (or Dim.AUTO on all)."""
    dim = torch.export.Dim
    side = dim("side", min=16, max=512)
    shapes = {0: dim.AUTO, 2: dim.AUTO, 3: dim.AUTO} if auto else {0: dim("b"), 2: side, 3: side}
    model = model or load_model("default")
    program = torch.export.export(model, (X[:2],), dynamic_shapes=(shapes,))
    path = tmp_path / f"square-{auto}.pt2"
    torch.export.save(program, str(path))
    return path


@pytest.mark.parametrize(
    ("arch", "auto"),
    [("default", False), ("default", True), ("vgg11", True)],
    ids=["one-dim-for-h-and-w", "dim-auto", "dim-auto-max-pooling"],
)
def test_export_file_with_shape_guards_loads(arch: str, auto: bool, tmp_path: Path) -> None:
    """Regression: genuine exports whose dynamic dimensions are related hold guards torch
    writes as Python (``L['x'].size()[3] == L['x'].size()[2]``; ``max(1, ...)`` for pooling
    layers): all were refused as code."""
    torch.manual_seed(0)
    model = load_model("default") if arch == "default" else create_model(arch).eval()
    path = _square_export(tmp_path, auto, model)
    program = _config(path, "model.json")
    assert program["guards_code"] and "L['x'].size()" in program["guards_code"][0]
    assert (arch == "vgg11") == any("max(1, " in g for g in program["guards_code"])
    with torch.no_grad():
        assert torch.allclose(load_model(f"export:{path}")(X[:3]), model(X[:3]), atol=1e-5)


@pytest.mark.parametrize(
    "guard",
    [
        "__import__('fcr_spec_module')",
        "L['x'].size()[3] == __import__('fcr_spec_module').x",
        "L['x'].size(__import__('fcr_spec_module'))[0] == 1",
        "L[__import__('fcr_spec_module')].size()[0] == 1",
        "L['x'].__class__.size()[0] == 1",
        "(lambda: __import__('fcr_spec_module'))() == 1",
        "L['x'].size()[3] == [__import__('fcr_spec_module') for c in 'a']",
        "L['x'].size()[3] == 1 if __import__('fcr_spec_module') else 1",
        "L['x'].size()[3] == 1 or exec('import fcr_spec_module')",
        "L['x'].size()[3] == 1,\n__import__('fcr_spec_module')",
        'L["x\'"].size()[3] == 1',
        "math.floor(L['x'].size()[3]) == 1",
        "max(1, __import__('fcr_spec_module').x) == 1",
        "max(1, L['x'].size()[3], key=__import__('fcr_spec_module')) == 1",
        "getattr(L['x'], 'size')()[0] == 1",
        "max.__call__(1, 2) == 1",
        "print(L['x'].size()[3]) == 1",
        "-" * 9000 + "1",  # the parser's and the check's depth limits: one line, no traceback
        "1" + "+1" * 4000,
        "1 == 1" * 2000,
    ],
    ids=lambda guard: guard[:40],
)
def test_export_file_with_code_in_a_guard_is_refused(
    guard: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Guards are checked as code (``fcrattack.models.pt2_guards``): anything but shape
    arithmetic on the inputs is refused, and nothing of it runs."""
    marker = _marker_module(tmp_path, monkeypatch)
    good = _square_export(tmp_path)
    program = _program(good)
    program["guards_code"] = [*program["guards_code"], guard]
    bad = tmp_path / "bad.pt2"
    _with_program(good, bad, program)
    with pytest.raises(ValueError, match="refused.*(guard|control character)") as exc:
        load_model(f"export:{bad}")(X[:2])
    assert "\n" not in str(exc.value) and not marker.exists()


def test_export_file_with_tensor_constants_loads(tmp_path: Path) -> None:
    """A genuine program with a lifted tensor constant (a tensor made in forward) loads."""

    class Shifted(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = load_model("default")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x) + torch.tensor([0.0] * 9 + [1e-3])

    model = Shifted().eval()
    path = tmp_path / "const.pt2"
    torch.export.save(torch.export.export(model, (X[:2],)), str(path))
    assert "tensor_" in json.dumps(_config(path, "model_constants_config.json"))
    with torch.no_grad():
        assert torch.allclose(load_model(f"export:{path}")(X[:2]), model(X[:2]), atol=1e-5)


def test_export_file_of_a_fixed_batch_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A program exported for batches of 1 (no dynamic_shapes) refuses other batches with
    one line naming the remedy, and runs with --batch-size 1; one of a fixed batch of 2 is
    told only to re-export (no batch size fits a smaller last batch)."""
    path = tmp_path / "one.pt2"
    torch.export.save(torch.export.export(load_model("default"), (X[:1],)), str(path))
    model = load_model(f"export:{path}")
    with pytest.raises(ValueError, match="exactly 1 image.*--batch-size 1") as exc:
        model(X[:2])
    assert "\n" not in str(exc.value)
    assert model(X[:1]).shape == (1, 10)
    from fcrattack.cli import main

    monkeypatch.chdir(tmp_path)
    base = ["-q", "attack", "--model", f"export:{path}", "--n", "2", "--opt", "steps=2"]
    assert main([*base, "--out", "a"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 1" in err[0], err
    assert main([*base, "--batch-size", "1", "--out", "b"]) == 0
    two = tmp_path / "two.pt2"  # a fixed batch of 2: no --batch-size fits a smaller last batch
    torch.export.save(torch.export.export(load_model("default"), (X[:2],)), str(two))
    assert main([*base, "--model", f"export:{two}", "--out", "c"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exactly 2 image" in err[0] and "--batch-size" not in err[0], err


def test_export_file_of_a_bounded_batch_says_so_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a program whose batch Dim has a maximum (``Dim("b", max=3)``) ended a run
    with larger batches in torch's RuntimeError traceback."""
    path = tmp_path / "three.pt2"
    batch = torch.export.Dim("b", max=3)
    program = torch.export.export(load_model("default"), (X[:2],), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    model = load_model(f"export:{path}")
    assert model(X[:1]).shape == (1, 10) and model(X[:3]).shape == (3, 10)
    with pytest.raises(ValueError, match="batches of 1 to 3 images .* not 4.*--batch-size 3"):
        model(X[:4])
    from fcrattack.cli import main

    monkeypatch.chdir(tmp_path)
    base = ["-q", "attack", "--model", f"export:{path}", "--n", "4", "--opt", "steps=2"]
    assert main([*base, "--out", "a"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 3 or less" in err[0], err
    assert main([*base, "--batch-size", "3", "--out", "b"]) == 0
    # One-Pixel's population is one forward pass: the message names its option, which works
    one = [*base[:-4], "--n", "1", "--attack", "onepixel", "--opt", "popsize=5"]
    assert main([*one, "--opt", "steps=1", "--out", "c"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--opt eval_batch_size=3" in err[0], err
    assert main([*one, "--opt", "steps=1", "--opt", "eval_batch_size=3", "--out", "d"]) == 0


def test_a_model_that_cannot_take_the_images_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: an export of a fixed input size given other images (``--size 16``) and a
    float16 model ended in torch's RuntimeError traceback, in ``attack`` and ``cam``."""
    from fcrattack.cli import main

    batch = {0: torch.export.Dim("batch")}
    fixed = tmp_path / "fixed.pt2"  # 32 x 32 only
    torch.export.save(
        torch.export.export(load_model("default"), (X[:2],), dynamic_shapes=(batch,)), str(fixed)
    )
    half = tmp_path / "half.pt2"
    program = torch.export.export(
        load_model("default").half(), (X[:2].half(),), dynamic_shapes=(batch,)
    )
    torch.export.save(program, str(half))
    monkeypatch.chdir(tmp_path)
    for image_id, image in zip(samples(2).ids, X[:2], strict=True):
        save_png(image, tmp_path / "photos" / image_id)
    cases = [
        (["--model", f"export:{fixed}", "--size", "16"], "shape (1, 3, 16, 16)", "equal to 32"),
        (["--model", f"export:{half}"], "shape (1, 3, 32, 32)", "expected scalar type Float"),
    ]
    for i, (model, shape, reason) in enumerate(cases):
        for command in (["attack", "--opt", "steps=1"], ["cam"]):
            argv = ["-q", command[0], *model, "--classes", "cifar10", "--data", "photos"]
            argv += ["--labels", "pred", "--n", "2", *command[1:]]
            assert main([*argv, "--out", f"o{i}{command[0]}"]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and shape in err[0] and reason in err[0], err


def test_export_file_of_a_two_input_module_is_one_line(tmp_path: Path) -> None:
    """Regression: a program of ``forward(x, y)`` (or of a constant keyword argument) loaded
    and ended the first call in torch's multi-line treespec log and a TypeError traceback."""

    class TwoInputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = load_model("default")

        def forward(self, x: torch.Tensor, shift: torch.Tensor | bool = False) -> torch.Tensor:
            return self.net(x) + (shift.sum() if isinstance(shift, torch.Tensor) else 0)

    class InList(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = load_model("default")

        def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
            return self.net(xs[0])

    batch = {0: torch.export.Dim("batch")}
    programs = {  # the last two: one input, but by keyword or in a list (a traceback too)
        "two": (TwoInputs(), (X[:2],), {"shift": torch.zeros(1)}, None),
        "flag": (TwoInputs(), (X[:2],), {"shift": True}, None),
        "keyword": (load_model("default"), (), {"x": X[:2]}, {"x": batch}),
        "list": (InList(), ([X[:2]],), None, ([batch],)),
    }
    for name, (model, args, kwargs, shapes) in programs.items():
        path = tmp_path / f"{name}.pt2"
        program = torch.export.export(model, args, kwargs, dynamic_shapes=shapes)
        torch.export.save(program, str(path))
        with pytest.raises(
            ValueError, match=r"other than as one positional arg.*model\(x\)"
        ) as exc:
            load_model(f"export:{path}")
        assert "\n" not in str(exc.value)


def test_export_file_with_code_in_a_shape_expression_is_refused(tmp_path: Path) -> None:
    model = load_model("default")
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (X[:2],), dynamic_shapes=({0: batch},))
    good = tmp_path / "dyn.pt2"
    torch.export.save(program, str(good))
    with zipfile.ZipFile(good) as z:
        name = next(n for n in z.namelist() if n.endswith("models/model.json"))
        text = z.read(name).decode()
    assert '"expr_str"' in text  # torch evaluates these with sympy
    marker = tmp_path / "ran"
    hostile = text.replace("Symbol(", f"open('{marker}', 'w') or Symbol(", 1)
    evil = tmp_path / "evil.pt2"
    _replace_entry(good, evil, "models/model.json", hostile.encode())
    with pytest.raises(ValueError, match="not arithmetic"):
        load_model(f"export:{evil}")
    assert not marker.exists()
    _same_predictions(load_model(f"export:{good}"), model)  # the genuine file still loads


def _with_nodes(good: Path, dest: Path, nodes: list[dict], values: dict) -> None:
    """A copy of the export ``good`` whose graph runs ``nodes`` (serialised graph nodes, given
    the first node's metadata) first, with tensor metadata ``values`` for their outputs."""
    program = _program(good)
    graph = program["graph_module"]["graph"]
    for node in nodes:
        node.setdefault("metadata", graph["nodes"][0]["metadata"])
        node.setdefault("is_hop_single_tensor_return", True)
    graph["nodes"] = nodes + graph["nodes"]
    graph["tensor_values"].update(values)
    _with_program(good, dest, program)


def _arg(name: str, value: dict, kind: int = 1) -> dict:
    return {"name": name, "arg": value, "kind": kind}


def _bytes(name: str, size: int) -> dict:
    """Serialised tensor metadata of a uint8 vector."""
    return {
        name: {
            "dtype": 1,
            "sizes": [{"as_int": size}],
            "requires_grad": False,
            "device": {"type": "cpu", "index": None},
            "strides": [{"as_int": 1}],
            "storage_offset": {"as_int": 0},
            "layout": 7,
        }
    }


def test_export_file_whose_program_writes_a_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: torch's verifier admits any operator, and a program mapped a user's file
    with aten.from_file(shared=True) and overwrote its bytes (no Python code involved)."""
    victim = tmp_path / "notes.txt"
    victim.write_text("ORIGINAL")
    mapped = {
        "target": "torch.ops.aten.from_file.default",
        "inputs": [
            _arg("filename", {"as_string": str(victim)}),
            _arg("shared", {"as_bool": True}),
            _arg("size", {"as_int": 4}),
            _arg("dtype", {"as_scalar_type": 1}, 2),
        ],
        "outputs": [{"as_tensor": {"name": "mapped"}}],
        "name": "mapped",
    }
    filled = {
        "target": "torch.ops.aten.fill_.Scalar",
        "inputs": [_arg("self", {"as_tensor": {"name": "mapped"}}), _arg("value", {"as_int": 65})],
        "outputs": [{"as_tensor": {"name": "filled"}}],
        "name": "filled",
    }
    evil = tmp_path / "evil.pt2"
    _with_nodes(
        _export(tmp_path), evil, [mapped, filled], _bytes("mapped", 4) | _bytes("filled", 4)
    )
    with pytest.raises(ValueError, match="refused.*aten.from_file") as exc:
        load_model(f"export:{evil}")(X[:1])
    assert "\n" not in str(exc.value) and victim.read_text() == "ORIGINAL"
    from fcrattack.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["-q", "attack", "--model", f"export:{evil}", "--n", "2", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "aten.from_file" in err[0], err
    assert victim.read_text() == "ORIGINAL" and not (tmp_path / "o").exists()


#: a view of 4096 floats over any tensor: the kernel checks no bounds
RESHAPE_ALIAS = [_arg("size", {"as_ints": [4096]}), _arg("stride", {"as_ints": [1]})]
#: an integer division by rounding mode (the int64 minimum by -1 ends the process: SIGFPE)
TRUNC = [
    _arg("other", {"as_tensor": {"name": "x"}}),
    _arg("rounding_mode", {"as_string": "trunc"}, 2),
]
#: the same division writing into an out= argument
OUT_MODE = [*TRUNC, _arg("out", {"as_tensor": {"name": "x"}}, 2)]
#: a dtype given as a plain int (to.prim_dtype makes any int a dtype: a crash at 5000)
PRIM_DTYPE = [_arg("dtype", {"as_int": 5000})]
#: a pooling window of 2**40 over a few values (the kernel walks it for hours)
WINDOW = [
    _arg("kernel_size", {"as_ints": [2**40]}),
    *(_arg(name, {"as_ints": [v]}) for name, v in (("stride", 1), ("padding", 0), ("dilation", 1))),
    _arg("ceil_mode", {"as_bool": False}),
]


@pytest.mark.parametrize(
    ("target", "argument", "more", "expected"),
    [
        ("higher_order.wrap", "torch.ops.aten.relu.default", [], "higher-order operator wrap"),
        ("higher_order.map_impl", "torch.serialization.os.system", [], "Python object system"),
        ("_test.leaky_relu.default", None, [], "_test.leaky_relu.default, which is not among"),
        ("aten._reshape_alias.default", None, RESHAPE_ALIAS, "_reshape_alias.default, which"),
        ("aten.div.Tensor_mode", None, TRUNC, "division by rounding mode"),
        ("aten.div.out_mode", None, OUT_MODE, "div.out_mode, an overload on plain numbers or"),
        ("aten.to.prim_dtype", None, PRIM_DTYPE, "a dtype of 5000, not a torch.dtype"),
        ("aten.max_pool1d.default", None, WINDOW, "kernel_size of 1099511627776, above 65536"),
    ],
)
def test_export_file_calling_what_is_not_a_tensor_operator_is_refused(
    target: str, argument: str | None, more: list[dict], expected: str, tmp_path: Path
) -> None:
    """Regression: a program may call only the allow-listed tensor operators of classifiers
    and control flow on its own subgraphs: not a higher-order operator that calls what it is
    given, an operator of another namespace (extensions register some that read files), an
    internal kernel that trusts its arguments (a view of any size over any tensor, then
    written: a heap overflow), an integer division by rounding mode (SIGFPE), a pooling
    window of 2**40 (a hang) or a dtype that is a plain int (a segfault), nor be given a
    Python function."""
    good = _export(tmp_path)
    with zipfile.ZipFile(good) as z:
        graph = json.loads(z.read(next(n for n in z.namelist() if "/models/" in n)))
    values = graph["graph_module"]["graph"]["tensor_values"]
    user = next(iter(values.values()))  # any tensor's metadata fits a node never run
    tensor = {"as_tensor": {"name": "x"}}  # an operator's arguments are named by its schema
    inputs = [_arg("self", tensor), *more]
    if argument is not None:  # a higher-order operator's are positional
        inputs = [_arg("", {"as_operator": argument}, 0), _arg("", tensor, 0)]
    output = [{"as_tensor": {"name": "call"}}]
    node = {"target": f"torch.ops.{target}", "inputs": inputs, "outputs": output, "name": "call"}
    evil = tmp_path / "evil.pt2"
    _with_nodes(good, evil, [node], {"call": user})
    with pytest.raises(ValueError, match=f"refused.*{expected}") as exc:
        load_model(f"export:{evil}")
    assert "\n" not in str(exc.value)


def test_export_file_calling_an_overload_on_plain_numbers_is_refused(tmp_path: Path) -> None:
    """Regression: only operator names were allow-listed, so ``aten.remainder.int(5, 0)``
    (an overload on plain ints; SIGFPE ended the process) sized a tensor of the program."""
    good = _export(tmp_path)
    with zipfile.ZipFile(good) as z:
        graph = json.loads(z.read(next(n for n in z.namelist() if "/models/" in n)))
    values = graph["graph_module"]["graph"]["tensor_values"]
    remainder = {
        "target": "torch.ops.aten.remainder.int",
        "inputs": [_arg("a", {"as_int": 5}), _arg("b", {"as_int": 0})],
        "outputs": [{"as_sym_int": {"as_name": "rest"}}],
        "name": "rest",
    }
    full = {
        "target": "torch.ops.aten.full.default",
        "inputs": [
            _arg("size", {"as_sym_ints": [{"as_name": "rest"}]}),
            _arg("fill_value", {"as_int": 1}),
        ],
        "outputs": [{"as_tensor": {"name": "filled"}}],
        "name": "filled",
    }
    evil = tmp_path / "evil.pt2"
    _with_nodes(good, evil, [remainder, full], {"filled": next(iter(values.values()))})
    program = _program(evil)  # the symbolic integer's value, as torch writes it
    program["graph_module"]["graph"]["sym_int_values"]["rest"] = {"as_int": 0}
    worse = tmp_path / "worse.pt2"
    _with_program(evil, worse, program)
    with pytest.raises(ValueError, match="refused.*remainder.int, an overload on plain numbers"):
        load_model(f"export:{worse}")


class _Branchy(torch.nn.Module):
    """The default model with a torch.cond, a no_grad region holding an assertion (it fails
    for an all-white batch), an autocast region, in-place ReLU and float shape arithmetic."""

    def __init__(self) -> None:
        super().__init__()
        self.net = load_model("default")
        self.relu = torch.nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            mean = x.mean()
            torch._assert_async(mean < 0.99, "an all-white batch")
        logits = self.relu(self.net(x)) * (mean * 0 + 1) * (x.numel() ** 0.5 / x.numel() ** 0.5)
        with torch.autocast("cpu", enabled=False):
            logits = logits.float()
        return torch.cond(logits.sum() > 0, lambda t: t * 2, lambda t: t - 1, (logits,))


def test_genuine_export_files_load_and_decomposed_ones_are_refused(tmp_path: Path) -> None:
    """Regression: genuine programs with control flow, no-grad and autocast regions and
    float shape expressions (``Float('0.5', precision=53)`` was refused as code) load, also
    exported with strict=True (whose ``source_fn_stack`` metadata was refused as names); the
    caller's grad mode survives a no-grad region that raises (torch leaves it off); a
    program after run_decompositions calls internal kernels and is refused, naming one."""
    model = _Branchy().eval()
    batch = {"x": {0: torch.export.Dim("batch", min=1)}}
    program = torch.export.export(model, (X[:2],), dynamic_shapes=batch)
    path = tmp_path / "plain.pt2"
    torch.export.save(program, str(path))
    assert "precision" in path.read_bytes().decode("latin-1")
    loaded = load_model(f"export:{path}")
    _same_predictions(loaded, model)
    with pytest.raises(RuntimeError, match="all-white"):
        loaded(torch.ones(1, 3, 32, 32))
    assert torch.is_grad_enabled()
    strict = tmp_path / "strict.pt2"
    net = load_model("default")
    torch.export.save(torch.export.export(net, (X[:2],), dynamic_shapes=batch, strict=True), strict)
    assert "source_fn_stack" in strict.read_bytes().decode("latin-1")
    _same_predictions(load_model(f"export:{strict}"), net)
    decomposed = tmp_path / "decomposed.pt2"
    torch.export.save(program.run_decompositions(), str(decomposed))
    with pytest.raises(ValueError, match="refused.*aten.convolution.default, which is not among"):
        load_model(f"export:{decomposed}")


def test_model_file_that_is_a_folder_is_named_so(tmp_path: Path) -> None:
    for form in ("export", "torchscript"):
        with pytest.raises(ValueError, match=f"{form}:{tmp_path} is a folder"):
            load_model(f"{form}:{tmp_path}")
        with pytest.raises(ValueError, match=f"{form}:/dev/null is not a regular file"):
            load_model(f"{form}:/dev/null")  # it was "file not found"
        with pytest.raises(ValueError, match=f"^{form}: needs a file path"):
            load_model(f"{form}:")  # it was "export: is a folder" (the current one)


def test_checkpoint_with_pickled_code_is_refused_without_unsafe_advice(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    path.write_bytes(_torch_saved({"arch": "resnet20", "x": _Opens(marker)}))
    with pytest.raises(ValueError, match="weights_only=True") as exc:
        load_model(str(path))
    message = str(exc.value)
    assert not marker.exists() and "\n" not in message
    assert "weights_only=False" not in message and "trust" not in message
    assert "safe_globals" not in message


@pytest.mark.parametrize("form", ["torchscript", "export"])
def test_model_files_that_do_not_load_are_one_line_errors(tmp_path: Path, form: str) -> None:
    good = _export(tmp_path)
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    text = tmp_path / "notes.txt"
    text.write_text("not a model\n")
    expected = "TorchScript" if form == "torchscript" else "torch.export"
    for path in (truncated, text):
        with pytest.raises(ValueError, match=expected) as exc:
            load_model(f"{form}:{path}")
        assert str(exc.value).startswith(f"{form}:{path}: ") and "\n" not in str(exc.value)


def test_archives_of_another_form_are_pointed_to_their_prefix(tmp_path: Path) -> None:
    scripted = tmp_path / "scripted.pt"
    torch.jit.trace(load_model("default"), X[:1]).save(str(scripted))
    exported = _export(tmp_path)
    with pytest.raises(ValueError, match=f"use torchscript:{scripted} .runs code") as exc:
        load_model(str(scripted))  # a plain path is read as a checkpoint
    assert "trusted files only" in str(exc.value)
    with pytest.raises(ValueError, match=f"use torchscript:{scripted}"):
        load_model(f"export:{scripted}")
    with pytest.raises(ValueError, match=f"use export:{exported}"):
        load_model(str(exported))
    with pytest.raises(ValueError, match=f"use export:{exported}"):
        load_model(f"torchscript:{exported}")


def test_py_factory_errors_tell_a_bad_call_from_a_failure_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(
        tmp_path,
        "factories_b",
        """
        def net(width=8):
            return len(width)  # a TypeError of the factory's own
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match=r"arguments do not fit net\(width=8\):.*'depth'"):
        load_model("py:factories_b:net?depth=3")
    with pytest.raises(ValueError, match="factories_b.net raised TypeError: object of type") as exc:
        load_model("py:factories_b:net?width=3")
    assert "do not fit" not in str(exc.value)
    assert isinstance(exc.value.__cause__, TypeError)  # the traceback is kept (-v shows it)


def test_a_factory_error_of_several_lines_is_one_line_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a ``py:`` factory whose error message spans lines printed them all."""
    _write_module(
        tmp_path,
        "factories_c",
        """
        def net():
            raise ValueError("no weights here:\\n  looked in a/\\n  looked in b/" + "x" * 900)
        """,
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from fcrattack.cli import main

    assert main(["-q", "attack", "--model", "py:factories_c:net", "--n", "2", "--out", "o"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no weights here: | looked in a/ | looked in b/" in err[0], err
    assert err[0].endswith("(the whole message: rerun with -v)") and len(err[0]) < 700


def test_a_factory_that_exits_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a ``py:`` factory (or its module) raising SystemExit printed its bare
    message lines and ended fcrattack with exit 1; a module raising GeneratorExit, a
    traceback."""
    _write_module(
        tmp_path,
        "factories_d",
        """
        import sys
        def net():
            sys.exit("exit\\nmulti")
        """,
    )
    (tmp_path / "factories_e.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "factories_f.py").write_text("raise GeneratorExit('closed')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    from fcrattack.cli import main

    for spec, said in (
        ("py:factories_d:net", "SystemExit: exit | multi"),
        ("py:factories_e:f", "SystemExit: 3"),
        ("py:factories_f:f", "GeneratorExit: closed"),  # a traceback before
    ):
        assert main(["-q", "attack", "--model", spec, "--n", "2", "--out", "o"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"raised {said}" in err[0], err


def test_py_factory_with_wrong_arguments_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: a ``py:`` factory given arguments it does not take is a ValueError naming
    the spec and the cause."""
    (tmp_path / "factories.py").write_text(
        "from fcrattack.models import default_model\n\ndef net():\n    return default_model()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="py:factories:net.*unexpected keyword"):
        load_model("py:factories:net?depth=3")
