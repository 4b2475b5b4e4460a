"""How an attack runs, as one value object: ``Execution`` (batch size, channels_last,
autocast, torch.compile), and the machinery behind it.

They change only how the model runs during the attack iterations (``perturb``): the clean
forward pass, the Grad-CAM region and the final re-check of success always use the caller's
model as given, in full precision, so the reported success is exact for the returned x_adv.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from ..base.validation import check_logits
from ..base.warn import warn
from ..options import Bool, Choice, Configurable, Int, Kind, Option, Optional

log = logging.getLogger(__name__)

R = TypeVar("R")

AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class BatchSize(Kind):
    """None (all images at once), a positive int, or "auto" (halve on out-of-memory)."""

    def coerce(self, name: str, value: Any) -> int | str | None:
        if value is None or value == "auto":
            return value
        return Int(min=1).coerce(name, value)

    def parse(self, name: str, text: str) -> int | str | None:
        if text.lower() in ("none", "auto"):
            return None if text.lower() == "none" else "auto"
        return Int(min=1).parse(name, text)

    def describe(self) -> str:
        return "int >= 1, 'auto' or None"


class Execution(Configurable):
    """Execution settings shared by every attack (all off by default).

    ``channels_last=True`` converts each batch once to ``torch.channels_last`` (the model's
    parameters are never touched: convolutions pick channels_last kernels from the input);
    ``autocast`` runs the model's forward in ``perturb`` under ``torch.autocast`` with float32
    logits; ``compile=True`` uses ``torch.compile(model)`` in the iterations, falling back to
    eager mode with a warning; ``batch_size="auto"`` starts with all images and halves the
    batch on an out-of-memory error, keeping the size that worked as an upper bound for later
    batches and runs (results equal those of that size given explicitly).
    """

    batch_size = Option(BatchSize(), None, "images per batch (None: all at once)")
    channels_last = Option(Bool(), False, "channels_last inputs during the iterations")
    autocast = Option(
        Optional(Choice(*AUTOCAST_DTYPES)),
        None,
        "mixed-precision forward passes in the iterations ('bf16' or 'fp16')",
    )
    compile = Option(Bool(), False, "torch.compile the model for the iterations")

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError("an Execution is immutable; build a new one")
        super().__setattr__(name, value)

    def __repr__(self) -> str:
        changed = {k: v for k, v in self.option_values().items() if v != self.options()[k].default}
        return f"Execution({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Execution) and self.option_values() == other.option_values()

    def __hash__(self) -> int:
        return hash(tuple(self.option_values().items()))

    @property
    def fast(self) -> bool:
        """Whether the model runs differently during the iterations."""
        return bool(self.channels_last or self.autocast or self.compile)


def is_oom(error: BaseException) -> bool:
    """Whether ``error`` is an out-of-memory error of any device."""
    oom = getattr(torch.cuda, "OutOfMemoryError", ())
    return isinstance(error, oom) or "out of memory" in str(error)


class ExecutionState:
    """What an attack learns while running: the batch-size bound found by out-of-memory
    back-off, and the compiled model and the model's number of classes (cached per model)."""

    def __init__(self) -> None:
        self.batch_limit: int | None = None
        self._compiled: tuple[nn.Module, Any] | None = None
        self._classes: tuple[nn.Module, int] | None = None

    def num_classes(self, model: nn.Module, probe: torch.Tensor) -> int:
        """The number of classes K of ``model``: its logits (n, K) on ``probe`` (n, C, H, W),
        checked, from one forward pass per model (the model is recognised by identity)."""
        if self._classes is None or self._classes[0] is not model:
            with torch.no_grad():
                logits = model(probe)
            check_logits(logits, probe.shape[0])
            self._classes = (model, logits.shape[1])
        return self._classes[1]

    def in_batches(self, n: int, settings: Execution, run: Callable[[slice], R]) -> list[R]:
        """``run(slice)`` over consecutive slices of ``range(n)`` of the configured batch size;
        with ``batch_size="auto"`` an out-of-memory error halves the batch and retries it."""
        auto = settings.batch_size == "auto"
        if auto:
            bs = min(n, self.batch_limit or n)
        else:
            bs = int(settings.batch_size or n)
        parts: list[R] = []
        i = 0
        while i < n:
            try:
                parts.append(run(slice(i, i + bs)))
            except RuntimeError as e:
                if not (auto and bs > 1 and is_oom(e)):
                    raise
                log.warning("out of memory with batch_size=%d; retrying with %d", bs, bs // 2)
                bs //= 2
                self.batch_limit = bs  # only an out-of-memory error lowers the bound
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            i += bs
        return parts

    def model_for(self, model: nn.Module, settings: Execution) -> nn.Module:
        """The model as the iterations see it: ``model`` itself, or a ``FastForward``."""
        if not settings.fast:
            return model
        inner: Any = model
        if settings.compile:
            if self._compiled is None or self._compiled[0] is not model:
                try:
                    self._compiled = (model, torch.compile(model))
                except Exception as e:
                    warn(f"torch.compile unavailable ({e}); running eagerly")
                    self._compiled = (model, model)
            inner = self._compiled[1]
        return FastForward(inner, model, settings, self)


class FastForward(nn.Module):
    """The caller's model with the fast paths on: channels_last input, autocast forward with
    float32 logits, and the compiled module (falling back to eager, with a warning, if
    compilation fails at the first call)."""

    def __init__(
        self, inner: nn.Module, eager: nn.Module, settings: Execution, state: ExecutionState
    ) -> None:
        super().__init__()
        self.inner, self.eager = inner, eager
        self.settings = settings
        self.state = [state]  # in a list: not registered as a submodule

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.settings.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.settings.autocast is None:
            return self._call(x).float()
        with torch.autocast(x.device.type, dtype=AUTOCAST_DTYPES[self.settings.autocast]):
            out = self._call(x)
        return out.float()

    def _call(self, x: torch.Tensor) -> torch.Tensor:
        if self.inner is self.eager:
            return self.eager(x)
        try:
            return self.inner(x)
        except Exception as e:
            if isinstance(e, RuntimeError) and is_oom(e):
                raise
            first = str(e).splitlines()[0] if str(e) else ""
            warn(f"torch.compile failed ({type(e).__name__}: {first}); running eagerly")
            self.state[0]._compiled = (self.eager, self.eager)
            self.inner = self.eager
            return self.eager(x)
