"""The attack template every fcrattack attack builds on.

``Attack.run(x, y)`` validates the input, moves it to the model's device, splits it into
batches, switches the model to eval mode (restoring every module's mode after), calls the
subclass's ``perturb`` on each batch, re-checks success with a fresh forward pass and returns an
:class:`AttackResult`. ``Attack.__call__(x, y)`` returns only the adversarial images (the
torchattacks convention).

Randomness: each image gets its own ``torch.Generator`` seeded from ``(seed, image id)``; the
id defaults to a hash of the image's content, so a batch gives the same result as its images
attacked one by one, and the global RNG is never touched.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from ..metrics import attack_success, perturbation_norms, quantize_uint8, summarize
from ..models.mode import eval_mode
from ..validation import check_images, check_labels, check_logits, check_mask

log = logging.getLogger(__name__)


@dataclass
class AttackResult:
    """Outcome of an attack on N images; every tensor is on the CPU.

    x_adv (N, C, H, W) in [0, 1]; success (N,) bool from a fresh forward pass on x_adv;
    success_uint8 (N,) bool after rounding x_adv to 8 bits (what a saved PNG gives);
    clean_correct (N,) bool; norms: per-image metrics (see ``fcrattack.metrics``);
    mask (N, 1, H, W) or None: the region the attack was allowed to change.
    """

    attack: str
    x_adv: torch.Tensor
    y: torch.Tensor
    target: torch.Tensor | None
    pred_clean: torch.Tensor
    pred_adv: torch.Tensor
    success: torch.Tensor
    success_uint8: torch.Tensor
    clean_correct: torch.Tensor
    norms: dict[str, torch.Tensor]
    mask: torch.Tensor | None = None
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.y)

    def summary(self) -> dict[str, float]:
        """ASR over the images the model classified correctly before the attack (untargeted)
        or all images (targeted); mean norms over successful ones; uint8 re-check count."""
        valid = self.clean_correct if self.target is None else torch.ones_like(self.success)
        out = summarize(self.norms, self.success, valid)
        out["n_images"] = len(self)
        out["n_success_uint8"] = int((self.success_uint8 & valid).sum())
        if self.mask is not None:
            out["mask_fraction"] = float(self.mask.float().mean())
        return out

    def records(self, ids: Sequence[str] | None = None) -> list[dict]:
        """One JSON-serialisable dict per image."""
        ids = ids if ids is not None else [str(i) for i in range(len(self))]
        rows = []
        for i in range(len(self)):
            row = {"id": ids[i], "attack": self.attack, "label": int(self.y[i]),
                   "pred_clean": int(self.pred_clean[i]), "pred_adv": int(self.pred_adv[i]),
                   "clean_correct": bool(self.clean_correct[i]),
                   "success": bool(self.success[i]), "success_uint8": bool(self.success_uint8[i])}
            if self.target is not None:
                row["target"] = int(self.target[i])
            row.update({k: float(v[i]) for k, v in self.norms.items()})
            rows.append(row)
        return rows


@dataclass
class BatchContext:
    """What ``perturb`` gets besides x and y, all on the attack device: ``target`` (N,) or None,
    ``mask`` (N, 1|C, H, W) or None, one ``generators`` entry per image, and ``index``: the
    batch's rows in ``run()``'s input (for per-image options aligned with it, e.g. an eps (N,))."""

    target: torch.Tensor | None
    mask: torch.Tensor | None
    generators: list[torch.Generator]
    index: slice = field(default_factory=lambda: slice(None))


def image_seeds(x: torch.Tensor, seed: int, ids: Sequence[int | str] | None = None) -> list[int]:
    """One 63-bit seed per image from (seed, id); id = content hash of the image by default."""
    if ids is None:
        data = x.detach().to("cpu", torch.float32).contiguous().numpy()
        keys = [hashlib.blake2b(a.tobytes(), digest_size=8).hexdigest() for a in data]
    else:
        keys = [str(i) for i in ids]
    return [int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(),
                           "little") >> 1 for k in keys]


def per_image_rand(shape: Sequence[int], generators: list[torch.Generator],
                   device: torch.device, kind: str = "uniform") -> torch.Tensor:
    """(N, *shape) random tensor, row i drawn from generators[i] (uniform in [0, 1) or normal).

    Used once per attack for initialisation, never inside iterations.
    """
    draw = torch.rand if kind == "uniform" else torch.randn
    return torch.stack([draw(tuple(shape), generator=g) for g in generators]).to(device)


class Attack(ABC):
    """Base class. Subclasses implement :meth:`perturb` on one batch on the attack device.

    Keyword arguments common to every attack: ``targeted`` (run() then needs ``target``),
    ``seed`` (per-image random streams), ``batch_size`` (None: all at once).
    """

    name = "attack"
    #: whether the perturbation is confined to the mask (False for attacks such as masked FGSM
    #: that treat the mask as two regions with different budgets)
    restrict_to_mask = True

    def __init__(self, model: nn.Module, *, targeted: bool = False, seed: int = 0,
                 batch_size: int | None = None) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.model = model
        self.targeted = targeted
        self.seed = seed
        self.batch_size = batch_size

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def __call__(self, x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Adversarial images (N, C, H, W) in [0, 1] on x's device."""
        return self.run(x, y, **kwargs).x_adv.to(x.device)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "model")
        return f"{type(self).__name__}({opts})"

    @abstractmethod
    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        """Adversarial images for one batch: x (B, C, H, W) in [0, 1], y (B,) -> (B, C, H, W)."""

    def prepare(self, x: torch.Tensor, y: torch.Tensor,
                target: torch.Tensor | None) -> torch.Tensor | None:
        """Hook for attacks that compute their own mask when the caller gives none (FCR's
        Grad-CAM region): returns (B, 1, H, W) or None."""
        return None

    def run(self, x: torch.Tensor, y: torch.Tensor, *, target: torch.Tensor | None = None,
            mask: torch.Tensor | None = None,
            ids: Sequence[int | str] | None = None) -> AttackResult:
        """Attack x (N, C, H, W) in [0, 1] with labels y (N,); see :class:`AttackResult`.

        ``mask`` (N, 1, H, W) restricts the perturbation to where it is 1; for attacks with a
        region of their own (FCR, masked FGSM) it replaces the Grad-CAM mask. ``ids`` name the
        images for their per-image random streams (default: content hash).
        """
        check_images(x)
        n = x.shape[0]
        check_labels(y, n)
        if self.targeted and target is None:
            raise ValueError(f"{self.name} was built with targeted=True: pass target=")
        if target is not None:
            check_labels(target, n, name="target")
        if mask is not None:
            mask = check_mask(mask, x)
        if ids is not None and len(ids) != n:
            raise ValueError(f"ids has {len(ids)} entries for {n} images")
        seeds = image_seeds(x, self.seed, ids)
        dev = self.device
        bs = self.batch_size or n
        parts: list[tuple] = []
        with eval_mode(self.model):
            for i in range(0, n, bs):
                sl = slice(i, i + bs)
                parts.append(self._run_batch(
                    x[sl].detach().to(dev, torch.float32).contiguous(), y[sl].to(dev).long(),
                    None if target is None else target[sl].to(dev).long(),
                    None if mask is None else mask[sl].to(dev, torch.float32), seeds[sl], sl))
        x_adv, pred_clean, pred_adv, pred_q, used_mask = (
            torch.cat(p) if p[0] is not None else None for p in zip(*parts))
        y_cpu = y.detach().cpu().long()
        tgt = None if target is None else target.detach().cpu().long()
        x_cpu = x.detach().cpu().float()
        return AttackResult(
            attack=self.name, x_adv=x_adv, y=y_cpu, target=tgt, pred_clean=pred_clean,
            pred_adv=pred_adv, success=attack_success(pred_adv, y_cpu, tgt),
            success_uint8=attack_success(pred_q, y_cpu, tgt), clean_correct=pred_clean == y_cpu,
            norms=perturbation_norms(x_cpu, x_adv), mask=used_mask)

    def _run_batch(self, x, y, target, mask, seeds, index):
        with torch.no_grad():
            logits = self.model(x)
        check_logits(logits, x.shape[0])
        check_labels(y, x.shape[0], logits.shape[1])
        if target is not None:
            check_labels(target, x.shape[0], logits.shape[1], name="target")
        if mask is None:
            mask = self.prepare(x, y, target)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        x_adv = self.perturb(x, y, BatchContext(target, mask, gens, index)).detach()
        if mask is not None and self.restrict_to_mask:  # holds by construction; make it exact
            x_adv = x + (x_adv - x) * (mask > 0)
        x_adv = x_adv.clamp(0, 1)
        with torch.no_grad():  # fresh re-check of success, and after 8-bit rounding
            pred_adv = self.model(x_adv).argmax(1)
            pred_q = self.model(quantize_uint8(x_adv)).argmax(1)
        return (x_adv.cpu(), logits.argmax(1).cpu(), pred_adv.cpu(), pred_q.cpu(),
                None if mask is None else mask.cpu())


def input_grad(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
               loss_fn) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss per image (B,), d sum(loss) / dx (B, C, H, W)) with x detached. ``model`` is a module
    or any function from images to logits; its parameters get no gradient (only the input's
    is computed)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        loss = loss_fn(logits)
        (grad,) = torch.autograd.grad(loss.sum(), x)
    return loss.detach(), grad
