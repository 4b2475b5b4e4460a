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

import functools
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

    Fast paths (keyword-only, off by default; every subclass's constructor accepts them too,
    forwarded here by ``__init_subclass__``). They change only how the model runs during the
    attack iterations (``perturb``): the clean forward, the Grad-CAM region (``prepare``) and
    the final re-check of success always use the caller's model as given, in full precision,
    so the reported success is exact for the returned x_adv.

    - ``channels_last=True``: each batch is converted once to
      ``torch.channels_last`` before ``perturb`` (and the model's input is converted if an
      attack made a contiguous copy). Only inputs are converted, never the model's
      parameters: PyTorch picks channels_last kernels for convolutions when the input is
      channels_last, and the caller's model is left exactly as it was.
    - ``autocast="bf16" | "fp16"``: the model's forward in ``perturb`` runs under
      ``torch.autocast(device.type, dtype)``; logits are cast to float32 before any loss.
    - ``compile=True``: the iterations use ``torch.compile(model)``, cached on the attack
      object; if torch.compile is missing or fails, a warning is logged and eager mode is used.
    - ``batch_size="auto"``: start with all images; on an out-of-memory error
      (``torch.cuda.OutOfMemoryError`` or a RuntimeError saying "out of memory") halve the
      batch, log a warning and retry that batch; the working size is kept for later batches
      and later ``run()`` calls. Results equal those of the working size given explicitly.

    During ``perturb`` ``self.model`` is a thin :class:`_FastForward` wrapper around the
    caller's model (restored afterwards, also on error) when any of the first three is on.
    """

    name = "attack"
    #: whether the perturbation is confined to the mask (False for attacks such as masked FGSM
    #: that treat the mask as two regions with different budgets)
    restrict_to_mask = True

    def __init__(self, model: nn.Module, *, targeted: bool = False, seed: int = 0,
                 batch_size: int | str | None = None, channels_last: bool = False,
                 autocast: str | None = None, compile: bool = False) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if batch_size != "auto" and batch_size is not None and (
                isinstance(batch_size, (str, bool)) or batch_size < 1):
            raise ValueError(f"batch_size must be positive, None or 'auto', got {batch_size!r}")
        self.model = model
        self.targeted = targeted
        self.seed = seed
        self.batch_size = batch_size
        self._auto_bs: int | None = None
        self._set_fast_paths(channels_last=channels_last, autocast=autocast, compile=compile)

    _FAST = ("channels_last", "autocast", "compile")

    def __init_subclass__(cls, **kwargs) -> None:
        """Let every subclass constructor take the fast-path options without listing them."""
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def wrapped(self, *args, **kw):
            fast = {k: kw.pop(k) for k in Attack._FAST if k in kw}
            init(self, *args, **kw)
            if fast:
                self._set_fast_paths(**{k: getattr(self, k) for k in Attack._FAST} | fast)

        cls.__init__ = wrapped

    def _set_fast_paths(self, *, channels_last: bool, autocast: str | None,
                        compile: bool) -> None:
        if autocast not in (None, *_AUTOCAST):
            raise ValueError(f"autocast must be None or one of {sorted(_AUTOCAST)}, "
                             f"got {autocast!r}")
        self.channels_last, self.autocast, self.compile = bool(channels_last), autocast, \
            bool(compile)
        self._compiled: tuple[nn.Module, nn.Module] | None = None

    def _fast_model(self, model: nn.Module) -> nn.Module | None:
        """The wrapper perturb() sees, or None when no fast path is on."""
        if not (self.channels_last or self.autocast or self.compile):
            return None
        inner = model
        if self.compile:
            if self._compiled is None or self._compiled[0] is not model:
                try:
                    self._compiled = (model, torch.compile(model))
                except Exception as e:  # noqa: BLE001 - any failure means: run eagerly
                    log.warning("torch.compile unavailable (%s); running eagerly", e)
                    self._compiled = (model, model)
            inner = self._compiled[1]
        return _FastForward(inner, model, self)

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def __call__(self, x: torch.Tensor, y: torch.Tensor, **kwargs) -> torch.Tensor:
        """Adversarial images (N, C, H, W) in [0, 1] on x's device."""
        return self.run(x, y, **kwargs).x_adv.to(x.device)

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v!r}" for k, v in vars(self).items()
                         if k != "model" and not k.startswith("_"))
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
        auto = self.batch_size == "auto"
        bs = min(self._auto_bs or n, n) if auto else (self.batch_size or n)
        parts: list[tuple] = []
        i = 0
        with eval_mode(self.model):
            while i < n:
                sl = slice(i, i + bs)
                try:
                    parts.append(self._run_batch(
                        x[sl].detach().to(dev, torch.float32).contiguous(),
                        y[sl].to(dev).long(),
                        None if target is None else target[sl].to(dev).long(),
                        None if mask is None else mask[sl].to(dev, torch.float32), seeds[sl],
                        sl))
                except RuntimeError as e:
                    if not (auto and bs > 1 and _is_oom(e)):
                        raise
                    log.warning("out of memory with batch_size=%d; retrying with %d",
                                bs, bs // 2)
                    bs //= 2
                    if torch.cuda.is_available():
                        torch.cuda.empty_cache()
                    continue
                i += bs
            if auto:
                self._auto_bs = bs
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
        model, fast = self.model, self._fast_model(self.model)
        x_in = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
        if fast is not None:
            self.model = fast
        try:
            x_adv = self.perturb(x_in, y, BatchContext(target, mask, gens, index)).detach()
        finally:
            self.model = model
        x_adv = x_adv.contiguous()
        if mask is not None and self.restrict_to_mask:  # holds by construction; make it exact
            x_adv = x + (x_adv - x) * (mask > 0)
        x_adv = x_adv.clamp(0, 1)
        with torch.no_grad():  # fresh re-check of success, and after 8-bit rounding
            pred_adv = self.model(x_adv).argmax(1)
            pred_q = self.model(quantize_uint8(x_adv)).argmax(1)
        return (x_adv.cpu(), logits.argmax(1).cpu(), pred_adv.cpu(), pred_q.cpu(),
                None if mask is None else mask.cpu())


_AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _is_oom(e: BaseException) -> bool:
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(e, oom) or "out of memory" in str(e)


class _FastForward(nn.Module):
    """The caller's model as perturb() sees it with fast paths on: channels_last input,
    autocast forward with float32 logits, and the compiled module (falling back to eager,
    with a warning, if compilation fails at the first call)."""

    def __init__(self, inner: nn.Module, eager: nn.Module, attack: Attack) -> None:
        super().__init__()
        self.inner, self.eager = inner, eager
        self.attack = [attack]  # in a list: not registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.attack[0]
        if att.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if att.autocast is None:
            return self._call(x).float()
        with torch.autocast(x.device.type, dtype=_AUTOCAST[att.autocast]):
            out = self._call(x)
        return out.float()

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        if self.inner is self.eager:
            return self.eager(x)
        try:
            return self.inner(x)
        except Exception as e:  # noqa: BLE001 - compile failures surface at the first call
            if isinstance(e, RuntimeError) and _is_oom(e):
                raise
            log.warning("torch.compile failed (%s: %s); running eagerly", type(e).__name__,
                        str(e).splitlines()[0] if str(e) else "")
            self.attack[0]._compiled = (self.eager, self.eager)
            self.inner = self.eager
            return self.eager(x)


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
