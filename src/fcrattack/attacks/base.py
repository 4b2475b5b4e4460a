"""The attack template every fcrattack attack builds on.

``Attack.run(x, y)`` validates the input, moves it to the model's device, splits it into
batches (``Execution``), switches the model to eval mode
(restoring every module's mode after), and per batch: predicts the clean images and checks
the labels against the model's classes, calls the subclass's ``perturb``, re-checks success
with a fresh forward pass on the returned images (and after rounding them to 8 bits, where
they are not on that grid already) and returns an ``AttackResult``. An attack whose first
iterate is the clean images hands run() that pass's logits (``Attack.reports_clean``), and
one that keeps its best iterate lets the re-check judge its last one
(``BatchContext.fall_back``): no forward pass is made twice. ``Attack.__call__(x, y)``
returns only the adversarial images (the torchattacks convention).

Options are declared once per attack (``fcrattack.options``); ``PAPER`` holds the FCR
paper's settings per data set and ``Attack.paper`` builds them.

Randomness: each image gets its own ``torch.Generator`` seeded from ``(seed, image id)``; the
id defaults to a hash of the image's content, so a batch gives the same result as its images
attacked one by one, and the global RNG is never touched.
"""

from __future__ import annotations

import inspect
import sys
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from ..base.seeding import MAX_SEED, image_seeds
from ..base.validation import (
    NO_GRADIENT,
    check_images,
    check_labels,
    check_logits,
    check_mask,
    check_model,
)
from ..base.warn import warn
from ..cam import Region
from ..metrics import attack_success, perturbation_norms, quantize_uint8
from ..models.mode import eval_mode
from ..options import Bool, Configurable, Instance, Int, Option
from .context import BatchContext
from .execution import Execution, ExecutionState
from .result import AttackResult

#: the data sets the FCR paper gives settings for
PAPER_DATASETS = ("cifar10", "imagenet")


class Attack(Configurable):
    """Base class of every attack. Subclasses declare their options and implement
    ``perturb`` on one batch on the attack device."""

    _positional = ("model",)
    name: ClassVar[str] = "attack"
    #: how listings and result pages label the attack ("": by its name alone)
    label: ClassVar[str] = ""
    #: one sentence to read with the attack's results ("": none)
    caveat: ClassVar[str] = ""
    #: the FCR paper's settings per data set ("cifar10", "imagenet"); {} when the paper does
    #: not use the attack (then ``paper`` gives the defaults)
    PAPER: ClassVar[dict[str, dict[str, Any]]] = {}
    #: whether the perturbation is confined to the mask (False for attacks such as masked FGSM
    #: that treat the mask as two regions with different budgets)
    restrict_to_mask: ClassVar[bool] = True
    #: whether ``perturb``'s first forward pass is on the unperturbed images and hands its
    #: logits to ``BatchContext.report_clean``: then ``run()`` makes no clean forward pass of
    #: its own where it may take them (it learns the number of classes, to check the labels
    #: against, from one image once per model)
    reports_clean: ClassVar[bool] = False

    targeted = Option(Bool(), False, "aim at run()'s target= classes instead of away from y")
    seed = Option(Int(min=0, max=MAX_SEED), 0, "seed of the per-image random streams")
    execution = Option(
        Instance(Execution),
        Execution(),
        "batch size, channels_last, autocast, compile (an immutable Execution)",
    )

    def __init__(self, model: nn.Module, /, **options: Any) -> None:
        check_model(model)
        self.model = model
        self._state = ExecutionState()
        super().__init__(**options)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "prepare" in cls.__dict__:  # the hook's old name: it would never be called
            raise TypeError(
                f"{cls.__name__}.prepare: the hook is now called default_mask and returns a "
                "fcrattack.cam.Region (mask, cam) or None"
            )
        for dataset, preset in cls.PAPER.items():  # paper settings are options, checked once
            if dataset not in PAPER_DATASETS:
                raise TypeError(f"{cls.__name__}.PAPER: unknown data set {dataset!r}")
            for key, value in preset.items():
                if key not in cls._options:
                    raise TypeError(f"{cls.__name__}.PAPER[{dataset!r}]: {key!r} is no option")
                cls._options[key].kind.coerce(key, value)

    @classmethod
    def _describe(cls) -> str:
        """The class docstring, then its module's (the method, its paper and defaults), so that
        ``help(Attack)`` is enough."""
        text = inspect.cleandoc(cls.__doc__ or "")
        module = sys.modules[cls.__module__].__doc__
        if cls.__module__ == __name__ or not module:
            return text
        if cls.PAPER:
            paper = "; ".join(f"{d}: {p}" for d, p in cls.PAPER.items())
            settings = f"The FCR paper's settings (``paper(model, dataset)``): {paper}."
        else:
            settings = "The FCR paper gives no settings for it: ``paper()`` gives the defaults."
        return f"{text}\n\n{inspect.cleandoc(module)}\n\n{settings}"

    @classmethod
    def paper(cls, model: nn.Module, dataset: str = "cifar10", **overrides: Any) -> Attack:
        """The attack with the FCR paper's settings for ``dataset`` ("cifar10" or
        "imagenet"), updated by ``overrides``; attacks the paper does not use get their
        defaults."""
        if dataset not in PAPER_DATASETS:
            raise ValueError(
                f"no paper settings for data set {dataset!r}; choose one of "
                f"{', '.join(PAPER_DATASETS)}"
            )
        return cls(model, **{**cls.PAPER.get(dataset, {}), **overrides})

    @property
    def device(self) -> torch.device:
        p = next(self.model.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    def __call__(self, x: torch.Tensor, y: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Adversarial images like x (same shape, dtype and device), in [0, 1]."""
        return self.run(x, y, **kwargs).x_adv.to(x.device, x.dtype)

    @abstractmethod
    def perturb(self, x: torch.Tensor, y: torch.Tensor, ctx: BatchContext) -> torch.Tensor:
        """Adversarial images for one batch: x (B, C, H, W) in [0, 1], y (B,) -> (B, C, H, W)."""

    def default_mask(
        self, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor | None
    ) -> Region | None:
        """Hook for attacks that compute their own region when the caller gives no mask (the
        FCR): its mask (B, 1, H, W) and the map it came from (B, H, W), or None (no region:
        the whole image)."""
        return None

    def check_input(self, x: torch.Tensor) -> None:
        """Hook: raise ValueError when an option does not fit images x (N, C, H, W) (e.g.
        more pixels to change than an image has); nothing here."""

    def attack_input(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """Hook: the clean images as ``perturb`` treats them (x itself here; attacks on the
        8-bit grid, ``GridMixin``, round what they may not
        change)."""
        return x

    def run(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        target: torch.Tensor | None = None,
        mask: Any = None,
        ids: Sequence[int | str] | None = None,
    ) -> AttackResult:
        """Attack x (N, C, H, W) in [0, 1] with labels y (N,); see
        ``AttackResult``.

        ``target`` (N,): the classes of a targeted attack (built with ``targeted=True``; each
        must differ from y). ``mask`` (N, 1, H, W) (or (N, C, H, W), (N, H, W); a tensor or
        array of bools or 0/1; a soft map is refused) restricts the perturbation to its ones;
        for attacks with a region of their own (FCR, masked FGSM, region DDN) it replaces the
        Grad-CAM mask.
        ``ids`` name the images for their per-image random streams (default: content hash).
        Works inside ``torch.no_grad()`` and ``torch.inference_mode()``.
        """
        check_images(x)
        self.check_input(x)
        n = x.shape[0]
        check_labels(y, n)
        if target is not None and not self.targeted:
            raise ValueError(
                f"{self.name} was built untargeted but got target=; build it with "
                "targeted=True for a targeted attack"
            )
        if self.targeted:
            if target is None:
                raise ValueError(f"{self.name} was built with targeted=True: pass target=")
            check_labels(target, n, name="target")
            same = (target.to(y.device) == y).nonzero()
            if len(same):
                raise ValueError(
                    f"target equals the true label for {len(same)} image(s) (first: "
                    f"index {int(same[0])}); a targeted attack needs another class"
                )
        if mask is not None:
            mask = check_mask(mask, x)
        if ids is not None and len(ids) != n:
            raise ValueError(f"ids has {len(ids)} entries for {n} images")
        for name, value in self.option_values().items():
            if isinstance(value, torch.Tensor) and value.shape[0] != n:
                raise ValueError(
                    f"option {name} has {value.shape[0]} per-image values for {n} images"
                )
        seeds = image_seeds(x, self.seed, ids)
        dev = self.device

        def batch(sl: slice) -> AttackResult:
            def put(t: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
                t = t[sl].detach().to(dev, dtype)
                return t.clone() if t.is_inference() else t.contiguous()

            return self._run_batch(
                put(x, torch.float32),
                put(y, torch.long),
                None if target is None else put(target, torch.long),
                None if mask is None else put(mask, torch.float32),
                seeds[sl],
                sl,
            )

        with torch.inference_mode(False), eval_mode(self.model):
            try:
                parts = self._state.in_batches(n, self.execution, batch)
            except RuntimeError as exc:  # autograd's words for a model output without gradient
                if "does not require grad" not in str(exc):
                    raise
                raise ValueError(f"{self.name}: {NO_GRADIENT}") from None
        return AttackResult.concat(parts)

    def _run_batch(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        mask: torch.Tensor | None,
        seeds: list[int],
        index: slice,
    ) -> AttackResult:
        b = x.shape[0]
        logits = None
        if self.reports_clean and not self.execution.fast:  # perturb's first pass is the clean one
            classes = self._state.num_classes(self.model, x[:1])
        else:
            with torch.no_grad():
                logits = self.model(x)
            check_logits(logits, b)
            classes = logits.shape[1]
        check_labels(y, b, classes)  # before any pass that uses them
        if target is not None:
            check_labels(target, b, classes, name="target")
        cam = None
        if mask is None and (region := self.default_mask(x, y, target)) is not None:
            mask, cam = region
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        model = self.model
        x_in = self.attack_input(x, mask)
        exact = logits is None and (x_in is x or torch.equal(x_in, x))
        ctx = BatchContext(target, mask, gens, index, exact=exact)
        if self.execution.channels_last:
            x_in = x_in.contiguous(memory_format=torch.channels_last)
        self.model = self._state.model_for(model, self.execution)
        try:
            x_adv = self.perturb(x_in, y, ctx).detach()
        finally:
            self.model = model
        x_adv = self._finish(x, x_adv, mask)
        with torch.no_grad():  # clean prediction, fresh re-check of success, 8-bit re-check
            if logits is None:
                logits = ctx.clean_logits if ctx.clean_logits is not None else self.model(x)
                check_logits(logits, b)
            pred_adv = self.model(x_adv).argmax(1)
            if ctx.fallback is not None:
                x_adv, pred_adv = self._fall_back(x, y, target, mask, x_adv, pred_adv, ctx.fallback)
            x_q = quantize_uint8(x_adv)  # on the grid already: the fresh check is the 8-bit one
            pred_q = pred_adv if torch.equal(x_q, x_adv) else self.model(x_q).argmax(1)
        y_cpu = y.cpu()
        tgt = None if target is None else target.cpu()
        pred_clean = logits.argmax(1).cpu()
        pred_adv, pred_q, x_adv = pred_adv.cpu(), pred_q.cpu(), x_adv.cpu()
        return AttackResult(
            attack=self.name,
            x_adv=x_adv,
            y=y_cpu,
            target=tgt,
            pred_clean=pred_clean,
            pred_adv=pred_adv,
            success=attack_success(pred_adv, y_cpu, tgt),
            success_uint8=attack_success(pred_q, y_cpu, tgt),
            clean_correct=pred_clean == y_cpu,
            norms=perturbation_norms(x.cpu(), x_adv),
            mask=None if mask is None else mask.cpu(),
            cam=None if cam is None else cam.cpu(),
        )

    def _finish(
        self, x: torch.Tensor, x_adv: torch.Tensor, mask: torch.Tensor | None
    ) -> torch.Tensor:
        """``perturb``'s images x_adv (B, C, H, W) as returned: finite (x where not), unchanged
        outside the mask (B, 1|C, H, W) of attacks restricted to it, in [0, 1]."""
        x_adv = x_adv.contiguous()
        bad = ~torch.isfinite(x_adv).flatten(1).all(1)
        if bad.any():  # e.g. a model whose gradient is NaN somewhere: never return NaN images
            warn(
                f"{self.name} produced non-finite values for {int(bad.sum())} image(s); they "
                "are returned unchanged"
            )
            x_adv = torch.where(bad.view(-1, 1, 1, 1), x, x_adv)
        if mask is not None and self.restrict_to_mask:  # holds by construction; make it exact
            x_adv = torch.where(mask > 0, x_adv, x)
        return x_adv.clamp(0, 1)

    def _fall_back(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
        mask: torch.Tensor | None,
        x_adv: torch.Tensor,
        pred_adv: torch.Tensor,
        fallback: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_adv, pred_adv) with the ``fallback`` images (``BatchContext.fall_back``), finished
        and freshly re-checked, where its rows of x_adv (B, C, H, W) failed the re-check
        (pred_adv (B,))."""
        images, rows = fallback
        rows = (rows & ~attack_success(pred_adv, y, target)).nonzero().flatten()
        if not len(rows):
            return x_adv, pred_adv
        alt = self._finish(x[rows], images[rows], None if mask is None else mask[rows])
        pred_alt = self.model(alt).argmax(1)
        return x_adv.index_copy(0, rows, alt), pred_adv.index_copy(0, rows, pred_alt)
