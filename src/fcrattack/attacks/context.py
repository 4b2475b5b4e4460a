"""What ``Attack.perturb`` gets besides the images and labels of one batch, and what it may
report back to ``Attack.run`` to spare it forward passes: ``BatchContext``."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class BatchContext:
    """What ``perturb`` gets besides x and y, all on the attack device: ``target`` (B,) or None,
    ``mask`` (B, 1|C, H, W) or None, one ``generators`` entry per image, and ``index``: the
    batch's rows in ``run()``'s input (for per-image options aligned with it, e.g. an eps (N,)).

    ``perturb`` may spare ``run()`` forward passes with two reports: ``report_clean`` (the
    logits of its own forward pass on the unperturbed images) and ``fall_back`` (images to
    return where its own fail ``run()``'s fresh re-check). ``exact``: whether ``run()`` takes
    the clean logits: it made no clean forward pass of its own (``Attack.reports_clean``, no
    fast path of ``Execution``: ``perturb`` sees the caller's model as given) and ``perturb``
    got the clean images unchanged (no rounding by ``attack_input``).
    """

    target: torch.Tensor | None
    mask: torch.Tensor | None
    generators: list[torch.Generator]
    index: slice = field(default_factory=lambda: slice(None))
    exact: bool = False
    clean_logits: torch.Tensor | None = None
    fallback: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def region(self) -> torch.Tensor:
        """The mask, for attacks that always have one (their ``default_mask`` computes it)."""
        if self.mask is None:
            raise RuntimeError("this attack needs a mask and got none")
        return self.mask

    def report_clean(self, logits: torch.Tensor) -> None:
        """Hand ``run()`` the logits (B, K) of a forward pass on exactly the x ``perturb`` got
        (the iterate at zero perturbation): where ``exact``, ``run()`` takes the clean
        prediction from them instead of a forward pass of its own (ignored otherwise)."""
        if self.exact and self.clean_logits is None:
            self.clean_logits = logits.detach()

    def fall_back(self, images: torch.Tensor, rows: torch.Tensor) -> None:
        """Where ``rows`` (B,) bool, the image ``perturb`` returns stands only if ``run()``'s
        fresh re-check finds it adversarial; where it does not, ``images`` (B, C, H, W) is
        returned instead (and re-checked). Spares an attack that keeps its best iterate a
        forward pass of its own on its last one."""
        self.fallback = (images.detach(), rows)
