"""The labels and target classes of a batch of a data-set attack, and the warning when the
clean accuracy says that the labels do not match the model.

- Labels: a label of ``PREDICTED`` (-1, an unlabelled image) becomes the
  class the model predicts for the clean image (one forward pass, only when such labels occur):
  the attack then moves the image away from (or, targeted, towards a class other than) the
  model's own decision.
- Targets (``target=``): None (untargeted); a class index (every image aims at it; an image
  whose label already is that class is *not attacked* and recorded as skipped); "least-likely"
  (the class with the smallest clean logit other than the label); "random" (a class other
  than the label, uniform, drawn from a hash of the attack's seed and the image id: the same
  for any batch size, shard or resume, and the global RNG is never touched).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..base.warn import warn
from ..data import PREDICTED
from ..models.mode import eval_mode

#: clean accuracy on the first batch below which the labels are probably wrong
LOW_ACCURACY = 0.2
#: the fewest labelled images that accuracy is judged on (the first batch, or more batches)
MIN_CHECKED = 16

#: the target rules besides a fixed class index
TARGET_RULES = ("least-likely", "random")

#: what ``target=`` takes: None, a class index, or one of ``TARGET_RULES``
Target = int | str | None


def check_target(target: Target, targeted: bool, name: str) -> None:
    """Refuse a ``target`` that is not None, a class index >= 0 or a rule, and a mismatch
    with the attack (``targeted``: built with ``targeted=True``; ``name``: for messages)."""
    if target is not None and not (
        (isinstance(target, int) and not isinstance(target, bool) and target >= 0)
        or target in TARGET_RULES
    ):
        raise ValueError(
            f"target must be a class index >= 0, {' or '.join(map(repr, TARGET_RULES))}, "
            f"got {target!r}"
        )
    if target is not None and not targeted:
        raise ValueError(
            f"{name} was built untargeted but a target was given; build it with targeted=True"
        )
    if target is None and targeted:
        raise ValueError(
            f"{name} was built with targeted=True: give a target (a class index, "
            f"{' or '.join(map(repr, TARGET_RULES))})"
        )


def target_draws(seed: int, ids: Sequence[str]) -> torch.Tensor:
    """(N,) int64 >= 0: one 62-bit number per image id, from a hash of (seed, id)."""
    return torch.tensor(
        [
            int.from_bytes(hashlib.blake2b(f"target:{seed}:{i}".encode(), digest_size=8).digest())
            >> 2
            for i in ids
        ],
        dtype=torch.int64,
    )


@dataclass
class BatchLabels:
    """One batch's labels and targets, on the CPU.

    y (B,) int64: the labels to attack away from (given, or the model's prediction where
    ``predicted``); predicted (B,) bool; target (B,) int64 or None (untargeted); attack (B,)
    bool: the images to attack (False where the label already is a fixed target class).
    """

    y: torch.Tensor
    predicted: torch.Tensor
    target: torch.Tensor | None
    attack: torch.Tensor


def batch_labels(
    model: nn.Module,
    x: torch.Tensor,
    labels: torch.Tensor,
    ids: Sequence[str],
    target: Target,
    seed: int,
) -> BatchLabels:
    """The labels and targets of a batch (module docstring).

    Args:
        model: the attacked model (its device is used; run in eval mode, no gradients).
        x: (B, 3, H, W) float images in [0, 1], on any device.
        labels: (B,) int64 class indices, or ``PREDICTED``.
        ids: (B,) image ids (the random targets' key).
        target: None, a class index or a rule (see ``check_target``).
        seed: the random targets' seed (the attack's ``seed``).
    """
    labels = labels.cpu()
    predicted = labels == PREDICTED
    logits = None
    if predicted.any() or target == "least-likely":
        device = next((p.device for p in model.parameters()), x.device)
        with torch.no_grad(), eval_mode(model, warn=False):
            logits = model(x.to(device)).float().cpu()
    y = torch.where(predicted, logits.argmax(1), labels) if logits is not None else labels
    attack = torch.ones_like(predicted)
    if target is None:
        return BatchLabels(y, predicted, None, attack)
    if isinstance(target, int):
        tgt = torch.full_like(y, target)
        attack = tgt != y
    elif target == "least-likely":
        assert logits is not None
        tgt = logits.masked_fill(torch.eye(logits.shape[1], dtype=torch.bool)[y], torch.inf)
        tgt = tgt.argmin(1)
    else:
        k = _num_classes(model, x) if logits is None else logits.shape[1]
        if k < 2:
            raise ValueError("a random target needs a model with at least 2 classes")
        r = target_draws(seed, ids) % (k - 1)
        tgt = r + (r >= y).long()  # uniform over the k - 1 classes other than y
    return BatchLabels(y, predicted, tgt, attack)


def _num_classes(model: nn.Module, x: torch.Tensor) -> int:
    """The number of logits ``model`` returns (one image, no gradients)."""
    device = next((p.device for p in model.parameters()), x.device)
    with torch.no_grad(), eval_mode(model, warn=False):
        return int(model(x[:1].to(device)).shape[1])


def low_accuracy(num_classes: int) -> float:
    """The clean accuracy below which the labels probably do not match the model: twice
    chance (``2 / num_classes``), but at least ``LOW_ACCURACY`` and at most halfway from
    chance to 100 % (75 % for two classes), so that a model at chance always warns."""
    chance = 1 / max(num_classes, 1)
    return max(LOW_ACCURACY, min(2 * chance, (1 + chance) / 2))


def accuracy_checked(rows: list[dict[str, Any]]) -> bool:
    """Check the clean accuracy on the given labels of ``rows`` (the records so far, from the
    first batch on) once they hold ``MIN_CHECKED`` attacked images with given labels: issue
    a warning when it is below ``low_accuracy`` of the classes seen (the largest label or
    prediction + 1), or when the model predicts one class for images of several. Returns
    whether the check was made (fewer images tell too little: 0 of 2 happens to a good
    model)."""
    given = [r for r in rows if r.get("label_source") == "given" and "success" in r]
    if len(given) < MIN_CHECKED:
        return False
    correct = sum(bool(r["clean_correct"]) for r in given)
    classes = max(max(int(r["label"]), int(r["pred_clean"])) for r in given) + 1
    predicted = {int(r["pred_clean"]) for r in given}
    constant = len(predicted) == 1 and len({int(r["label"]) for r in given}) > 1
    if correct < low_accuracy(classes) * len(given) or constant:
        n = len(given)
        one = f", class {predicted.pop()} predicted for every image" if constant else ""
        warn(
            f"clean accuracy on the first {n} labelled images is {100 * correct / n:.0f} % "
            f"({correct} correct{one}; chance is about {100 / max(classes, 2):.0f} %): the "
            "labels probably do not match the model. Untargeted success rates count only "
            "correctly classified images, so the results would mean little. Check that the "
            "class-folder names (or --labels) name the model's classes, and the preprocessing: "
            "image size (--size) and normalisation (the model must take [0, 1] images)",
            stacklevel=2,
        )
    return True
