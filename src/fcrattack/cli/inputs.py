"""The model and the images a command works on, resolved from its arguments with clear errors:
``--model/--arch/--mean/--std/--classes`` and ``--data/--dataset/--labels/--size/--resize/
--n/--seed``, and ``--target``."""

from __future__ import annotations

import argparse
import functools
import logging
from collections.abc import Callable
from pathlib import Path

import torch

from ..attacks.execution import is_oom
from ..data import (
    CIFAR10_CLASSES,
    Dataset,
    ImageList,
    cifar10_pickle,
    list_class_folders,
    list_flat_folder,
    list_imagenet,
    match_classes,
    resize_policy,
    samples,
)
from ..data.decode import Transform
from ..models import ARCHITECTURES, ModelInfo, Normalized, load_model
from ..models.torch_errors import named_reason

log = logging.getLogger("fcrattack.cli")


class CLIError(Exception):
    """A user error: reported as one line, exit code 2."""


def load_cli_model(args: argparse.Namespace, device: torch.device) -> Normalized:
    """The model of --model/--arch/--mean/--std/--size/--classes on ``device``."""
    if args.arch is not None and args.arch not in ARCHITECTURES:
        raise CLIError(
            f"unknown architecture {args.arch!r}; choose one of {', '.join(sorted(ARCHITECTURES))}"
        )
    model = load_model(
        args.model,
        arch=args.arch,
        mean=args.mean,
        std=args.std,
        size=args.size,
        classes=args.classes,
    )
    if any(t.is_meta for t in (*model.parameters(), *model.buffers())):
        raise CLIError(
            f"--model {args.model}: the model has tensors without data (on the meta device); "
            "load its weights first"
        )
    model = model.to(device)
    # every later call (probe, Grad-CAM, attack) goes through this one guard
    model.forward = functools.partial(_input_errors, model.forward, args.model)  # type: ignore[method-assign]
    info = model.info or ModelInfo(args.model)
    log.info(
        "model %s on %s: input %s px, %s classes%s",
        args.model,
        device,
        info.input_size or "any",
        len(info.classes) if info.classes else "unnamed",
        f", Grad-CAM layer {info.cam_layer}" if info.cam_layer else "",
    )
    return model


def _input_errors(
    forward: Callable[[torch.Tensor], torch.Tensor], spec: str, x: torch.Tensor
) -> torch.Tensor:
    """``forward(x)``, with what the user's model raises on images it cannot take (a fixed
    input size, float16 weights, inputs given by keyword, an exception of its own code) as one
    ValueError naming them; out-of-memory errors pass (``batch_size="auto"`` backs off)."""
    try:
        return forward(x)
    except (ValueError, KeyboardInterrupt):  # fcrattack's checks (one line already), Ctrl-C
        raise
    except BaseException as exc:  # a model's SystemExit or GeneratorExit too
        if is_oom(exc):
            raise
        raise ValueError(
            f"--model {spec} fails on images of shape {tuple(x.shape)} ({x.dtype}): "
            f"{named_reason(exc)} (a model here takes one float32 batch "
            "(N, C, H, W) of the images' size, see --size; records written so far are kept)"
        ) from exc


def _transform(args: argparse.Namespace, info: ModelInfo) -> Transform | None:
    """Resizing of --size/--resize, by default to the model's input size and resize ratio."""
    resize = info.resize_size if args.size is None else None
    return resize_policy(args.resize, args.size or info.input_size, resize)


def _no_resize(args: argparse.Namespace, what: str) -> None:
    """--size and --resize apply to image files only."""
    if args.size is not None:
        raise CLIError(f"--size resizes image files; {what} are 32 x 32 tensors")


def _guess_kind(path: Path, info: ModelInfo) -> str:
    """cifar10 for the CIFAR-10 layouts, imagenet for val/<wnid>/ with an ImageNet model, else
    class folders."""
    if (path / "test_batch").is_file() or (path / "cifar-10-batches-py").is_dir():
        return "cifar10"
    if (path / "test").is_dir() and info.dataset == "cifar10":
        return "cifar10"
    if info.dataset == "imagenet" and (
        (path / "val").is_dir() or (path / "classes.json").is_file()
    ):
        return "imagenet"
    return "folder"


def load_data(args: argparse.Namespace, info: ModelInfo) -> tuple[Dataset | ImageList, str]:
    """The images of --data (streamed from disk when they are files; the bundled samples and
    the CIFAR pickle release in memory) and their kind: cifar10, imagenet, folder or flat."""
    in_memory = "the bundled samples" if args.data is None else "the CIFAR-10 pickle release"
    if args.data is None:
        if args.labels is not None:
            raise CLIError("--labels needs --data (a flat folder of images)")
        if args.dataset is not None:
            raise CLIError(
                f"--dataset {args.dataset} needs --data (without it, the bundled CIFAR-10 "
                "samples are used)"
            )
        if info.classes is not None and list(info.classes) != CIFAR10_CLASSES:
            raise CLIError(
                f"no --data: the bundled samples are CIFAR-10 images, but {info.source} has "
                f"{len(info.classes)} other classes; pass --data"
            )
        _no_resize(args, in_memory)
        data = samples(args.n, args.seed if args.n else None)
        log.info("no --data: using %d of the bundled CIFAR-10 samples", len(data))
        return data, "cifar10"
    path = Path(args.data)
    if not path.exists():
        raise CLIError(f"data path not found: {path}")
    transform = _transform(args, info)
    classes, wnids = info.classes, info.wnids
    if args.labels is not None:
        if args.dataset is not None:
            raise CLIError("--labels reads a flat folder of images: drop --dataset")
        listing = list_flat_folder(
            path, labels=args.labels, classes=classes, wnids=wnids, transform=transform
        )
        kind = "flat"
    else:
        kind = args.dataset or _guess_kind(path, info)
        if kind == "cifar10" and (
            (path / "test_batch").is_file() or (path / "cifar-10-batches-py").is_dir()
        ):
            _no_resize(args, in_memory)
            return cifar10_pickle(path, "test", n=args.n, seed=args.seed), kind
        if kind == "imagenet":
            listing = list_imagenet(path, transform=transform, classes=classes, wnids=wnids)
        else:  # class folders; a CIFAR-style root is read at its test split
            folder = path / "test" if (path / "test").is_dir() else path
            if kind == "cifar10":
                classes, wnids = classes or tuple(CIFAR10_CLASSES), None
            try:
                listing = list_class_folders(
                    folder, classes=classes, wnids=wnids, transform=transform
                )
            except ValueError as exc:
                if "no class folders" not in str(exc):
                    raise
                raise CLIError(
                    f"{exc}: for a flat folder of images pass --labels pred (attack the "
                    "model's prediction) or --labels FILE"
                ) from None
    listing = listing.select(args.n, args.seed)
    log.info("%d images (%s) in %s", len(listing), kind, path)
    return listing, kind


def parse_target(text: str | None, info: ModelInfo) -> int | str | None:
    """--target: None, "least-likely", "random", or a class index (a name is matched to the
    model's class names)."""
    if text is None or text in ("least-likely", "random"):
        return text
    if text.isascii() and text.isdigit():
        if info.classes is not None and int(text) >= len(info.classes):
            raise CLIError(
                f"--target {text}: the model has {len(info.classes)} classes (0 to "
                f"{len(info.classes) - 1})"
            )
        return int(text)
    if not info.classes:
        raise CLIError(
            f"--target {text!r}: the model has no class names; give a class index or --classes"
        )
    try:
        return match_classes([text], info.classes, info.wnids)[0]
    except ValueError as exc:
        raise CLIError(f"--target: {exc}") from None
