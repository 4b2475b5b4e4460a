"""Training loop for the CIFAR architectures: crop+flip augmentation, SGD with Nesterov
momentum, one-cycle schedule, a checkpoint per epoch and resume.

Augmentation runs batched on the training device (no per-image Python loop). The settings are
declared options (``TrainConfig``), checked like an attack's. A run restarted into the same
folder resumes from ``last.pt`` only with the same settings and training set (its size and a
digest of its ids, labels and pixels; the optimiser state and the one-cycle schedule belong
to them): anything else is refused, naming the difference. A loss that becomes NaN or
infinite stops the run (``TrainingDiverged``), leaving the checkpoint of the last finished
epoch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..base.folder_paths import refuse_links
from ..base.lock import WriterLock
from ..base.seeding import MAX_SEED
from ..base.store import write_torch
from ..data import Dataset
from ..options import Bool, Choice, Configurable, Float, Int, Option, Optional, Text
from .exported import CHECKPOINT
from .exported import export_weights as export_weights  # its import path before
from .normalize import Normalized
from .registry import ARCHITECTURES, create_model, load_checkpoint, read_checkpoint

log = logging.getLogger(__name__)

#: settings that may differ when a run is resumed (they do not change the result)
RESUMABLE = ("channels_last",)


class TrainingDiverged(ValueError):
    """The training loss became NaN or infinite (a learning rate too high, usually)."""


class TrainConfig(Configurable):
    """The settings of a training run."""

    arch = Option(Choice(*sorted(ARCHITECTURES)), "resnet20", "CIFAR architecture")
    epochs = Option(Int(min=1), 30, "epochs; the one-cycle schedule spans all of them")
    batch_size = Option(Int(min=1), 128, "images per SGD step")
    lr = Option(Float(min=0, min_open=True), 0.1, "peak learning rate of the one-cycle schedule")
    momentum = Option(Float(min=0, max=1, max_open=True), 0.9, "Nesterov momentum")
    weight_decay = Option(Float(min=0), 5e-4, "L2 weight decay")
    label_smoothing = Option(Float(min=0, max=1, max_open=True), 0.0, "label smoothing")
    seed = Option(
        Int(min=0, max=MAX_SEED), 0, "seed of the weight init, the batch order and augmentation"
    )
    init = Option(Optional(Text()), None, "checkpoint to start from (fine-tuning)")
    channels_last = Option(Bool(), True, "channels-last convolutions (faster on CPU and GPU)")


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop with ``pad`` pixels of zero padding and random horizontal flip.

    x: (B, C, H, W); returns a new tensor of the same shape.
    """
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dev = x.device
    oy = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    ox = torch.randint(0, 2 * pad + 1, (b,), generator=generator).to(dev)
    flip = (torch.rand(b, generator=generator) < 0.5).to(dev)
    rows = oy[:, None] + torch.arange(h, device=dev)
    cols = ox[:, None] + torch.arange(w, device=dev)
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    bi = torch.arange(b, device=dev)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, data: Dataset, batch_size: int = 500, device: str | torch.device = "cpu"
) -> float:
    """Top-1 accuracy (in [0, 1]) of ``model`` on ``data``."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=device)
    for i in range(0, len(data), batch_size):
        x = data.images[i : i + batch_size].to(device).float()
        if data.images.dtype == torch.uint8:
            x = x / 255
        correct += (model(x).argmax(1) == data.labels[i : i + batch_size].to(device)).sum()
    model.train(was_training)
    return correct.item() / len(data)


def _checkpoint(
    model: Normalized,
    cfg: TrainConfig,
    epoch: int,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    acc: float | None,
    train_set: dict[str, Any],
) -> dict[str, Any]:
    head = model.model.linear if hasattr(model.model, "linear") else model.model.classifier
    assert isinstance(head, torch.nn.Linear)  # every CIFAR architecture ends in one
    return {
        "arch": cfg.arch,
        "state_dict": model.state_dict(),
        "num_classes": head.out_features,
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        "epoch": epoch,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "config": cfg.option_values(),
        **train_set,
        "test_acc": acc,
    }


def training_set(data: Dataset) -> dict[str, Any]:
    """What a checkpoint records of its training set: the number of images and a digest of
    their ids, labels and pixels (``train_data``)."""
    h = hashlib.sha256(json.dumps([data.ids, data.labels.tolist()]).encode("utf-8"))
    h.update(data.images.detach().cpu().contiguous().numpy().tobytes())
    return {"train_images": len(data), "train_data": h.hexdigest()[:16]}


def _resume_state(path: Path, cfg: TrainConfig, train_set: dict[str, Any]) -> Mapping[str, Any]:
    """The checkpoint ``path`` of an earlier run, refused unless it is a training checkpoint of
    the same settings and training set (``training_set``; a checkpoint written before the
    digest was recorded is compared by size alone)."""
    state = read_checkpoint(path)
    keys = ("state_dict", "optimizer", "scheduler", "epoch", "config")
    if not isinstance(state, Mapping) or not all(k in state for k in keys):
        raise ValueError(f"{path} is not a checkpoint of fcrattack train; use another --out")
    saved = {**state["config"], **{k: state.get(k, v) for k, v in train_set.items()}}
    now = {**cfg.option_values(), **train_set}
    diff = [
        f"{key} {saved.get(key)!r} -> {value!r}"
        for key, value in now.items()
        if key not in RESUMABLE and saved.get(key) != value
    ]
    if diff:
        raise ValueError(
            f"{path.parent} holds a training run with other settings ({'; '.join(diff)}): the "
            "optimiser state and the one-cycle schedule belong to them. Rerun with the same "
            f"settings to resume it, or train into another --out (--init {path} starts a new "
            "run from its weights)"
        )
    return state


def _warm_up(total_steps: int) -> float:
    """The share of the one-cycle schedule's ``total_steps`` that warm the learning rate up:
    a quarter, or a fifth for 4 steps in all, where torch's ``OneCycleLR`` would divide by
    the zero length of a one-step warm-up."""
    return 0.2 if total_steps == 4 else 0.25


def _check_finite(loss: torch.Tensor, epoch: int, cfg: TrainConfig, ckpt: Path) -> None:
    """Stop the run when the (summed) loss of epoch ``epoch`` (0-based) is NaN or infinite."""
    if not bool(torch.isfinite(loss)):
        kept = f"{ckpt} keeps epoch {epoch}" if ckpt.is_file() else "no checkpoint was written"
        raise TrainingDiverged(
            f"training diverged: the loss became {loss.item()} in epoch {epoch + 1} (lr "
            f"{cfg.lr:g} too high?); stopped, {kept}"
        )


def train(
    cfg: TrainConfig,
    train_data: Dataset,
    test_data: Dataset | None,
    out: str | Path,
    device: str | torch.device = "cpu",
    quiet: bool = False,
) -> Normalized:
    """Train ``cfg.arch`` on ``train_data`` (uint8 or float images), writing
    ``out/last.pt`` after every epoch; a run restarted with the same ``out`` and settings
    resumes (other settings are refused: module docstring).

    Args:
        cfg: the settings.
        train_data: the training images and labels.
        test_data: images to report the accuracy on after each epoch (None: none).
        out: the run folder.
        device: the training device.
        quiet: no progress bars.

    The run folder is locked while it trains (``fcrattack.base.lock.WriterLock``): a second
    run into it is refused.
    """
    with WriterLock(out) as lock:
        return _train(cfg, train_data, test_data, lock.folder, device, quiet)


def _train(
    cfg: TrainConfig,
    train_data: Dataset,
    test_data: Dataset | None,
    out: Path,
    device: str | torch.device,
    quiet: bool,
) -> Normalized:
    """The work of ``train`` in its locked folder ``out``."""
    ckpt_path = out / CHECKPOINT
    refuse_links(out, [CHECKPOINT])  # a link to a file elsewhere would be read, then replaced
    if ckpt_path.exists() and not ckpt_path.is_file():
        raise ValueError(
            f"{ckpt_path} is not a file: train writes its checkpoint there after every epoch; "
            "move it away or train into another --out"
        )
    train_set = training_set(train_data)
    state = _resume_state(ckpt_path, cfg, train_set) if ckpt_path.is_file() else None
    if cfg.init:
        model = load_checkpoint(cfg.init, cfg.arch)
    else:
        torch.manual_seed(cfg.seed)  # weight init only; training randomness uses `gen` below
        model = create_model(cfg.arch, num_classes=len(train_data.classes) or 10)
    model = model.to(device).train()
    fmt = torch.channels_last if cfg.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)  # type: ignore[call-overload]
    steps_per_epoch = math.ceil(len(train_data) / cfg.batch_size)
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=cfg.lr,
        momentum=cfg.momentum,
        weight_decay=cfg.weight_decay,
        nesterov=True,
    )
    total_steps = cfg.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=total_steps, pct_start=_warm_up(total_steps)
    )
    start = 0
    if state is not None:
        try:
            model.load_state_dict(state["state_dict"])
        except RuntimeError:
            raise ValueError(f"{ckpt_path} does not fit architecture {cfg.arch!r}") from None
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start = state["epoch"]
        log.info("resuming %s from epoch %d", ckpt_path, start)
    images = train_data.images.to(device)
    labels = train_data.labels.to(device)
    acc = None
    for epoch in range(start, cfg.epochs):
        gen = torch.Generator().manual_seed(cfg.seed * 1000 + epoch)
        perm = torch.randperm(len(train_data), generator=gen).to(device)
        total_loss = torch.zeros((), device=device)
        t0 = time.time()
        bar = tqdm(
            range(steps_per_epoch),
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            leave=False,
            disable=quiet,
        )
        for step in bar:
            idx = perm[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            x = images[idx].float()
            if images.dtype == torch.uint8:
                x = x / 255
            x = augment(x, gen).contiguous(memory_format=fmt)
            loss = F.cross_entropy(model(x), labels[idx], label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += loss.detach()
            if step % 50 == 0:  # the loss is read here anyway: stop a diverged run early
                _check_finite(loss.detach(), epoch, cfg, ckpt_path)
                bar.set_postfix(loss=f"{loss.item():.3f}")
        _check_finite(total_loss, epoch, cfg, ckpt_path)
        acc = evaluate(model, test_data, device=device) if test_data is not None else None
        log.info(
            "epoch %d/%d loss %.4f test acc %s (%.0f s)",
            epoch + 1,
            cfg.epochs,
            total_loss.item() / steps_per_epoch,
            f"{acc:.4f}" if acc is not None else "-",
            time.time() - t0,
        )
        checkpoint = _checkpoint(model, cfg, epoch + 1, optimizer, scheduler, acc, train_set)
        write_torch(ckpt_path, checkpoint)
    return model.eval()
