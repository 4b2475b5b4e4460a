"""What an attack returns (``AttackResult``, concatenated across batches, shards and
chunks in one place) and the one bookkeeping of minimisation attacks: ``BestIterate``,
the smallest successful iterate per image (FCR with ``select="best"``, C&W, region DDN)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..metrics import attack_success, summarize_records


@dataclass
class AttackResult:
    """Outcome of an attack on N images; every tensor is on the CPU.

    x_adv (N, C, H, W) float32 in [0, 1], always finite; y (N,) labels; target (N,) or None;
    pred_clean / pred_adv (N,) predicted classes before and after; success (N,) bool from a
    fresh forward pass on x_adv; success_uint8 (N,) bool after rounding x_adv to 8 bits (what
    a saved PNG gives); clean_correct (N,) bool; norms: per-image metrics (N,) each (see
    ``fcrattack.metrics.perturbation_norms``); mask (N, 1, H, W) or None: the region the
    attack was allowed to change; cam (N, H, W) in [0, 1] or None: the normalised Grad-CAM
    map the attack's own region was thresholded from (None where the caller gave the mask,
    the region is the whole image, t = 0, or the attack has no region).
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
    cam: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.y)

    @classmethod
    def concat(cls, parts: Sequence[AttackResult]) -> AttackResult:
        """One result from the results of consecutive parts of the same attack run."""
        if not parts:
            raise ValueError("no results to concatenate")

        def cat(values: list[Any]) -> Any:
            if values[0] is None:
                return None
            if isinstance(values[0], torch.Tensor):
                return torch.cat(values)
            if isinstance(values[0], dict):
                return {k: cat([v[k] for v in values]) for k in values[0]}
            return values[0]

        if len(parts) == 1:
            return parts[0]
        return cls(
            **{f.name: cat([getattr(p, f.name) for p in parts]) for f in dataclasses.fields(cls)}
        )

    def subset(self, index: slice | Sequence[int] | torch.Tensor) -> AttackResult:
        """The result for the images at ``index`` (a slice, positions or a bool mask)."""

        def take(value: Any) -> Any:
            if isinstance(value, torch.Tensor):
                return value[index if isinstance(index, slice) else torch.as_tensor(index)]
            if isinstance(value, dict):
                return {k: take(v) for k, v in value.items()}
            return value

        return type(self)(**{f.name: take(getattr(self, f.name)) for f in dataclasses.fields(self)})

    def summary(self) -> dict[str, float]:
        """The summary of ``records()`` (``fcrattack.metrics.summarize_records``): ASR over
        the images the model classified correctly before the attack (untargeted) or all
        images (targeted); mean norms over successful ones; uint8 re-check count; mean mask
        fraction of region attacks."""
        return summarize_records(self.records())

    def records(self, ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """One JSON-serialisable dict per image (``ids``: one name per image)."""
        if ids is not None and len(ids) != len(self):
            raise ValueError(f"ids has {len(ids)} entries for {len(self)} images")
        names = [str(i) for i in (ids if ids is not None else range(len(self)))]
        fractions = None if self.mask is None else self.mask.flatten(1).float().mean(1)
        rows = []
        for i in range(len(self)):
            row: dict[str, Any] = {
                "id": names[i],
                "attack": self.attack,
                "label": int(self.y[i]),
                "pred_clean": int(self.pred_clean[i]),
                "pred_adv": int(self.pred_adv[i]),
                "clean_correct": bool(self.clean_correct[i]),
                "success": bool(self.success[i]),
                "success_uint8": bool(self.success_uint8[i]),
            }
            if self.target is not None:
                row["target"] = int(self.target[i])
            row.update({k: float(v[i]) for k, v in self.norms.items()})
            if fractions is not None:
                row["mask_fraction"] = float(fractions[i])
            rows.append(row)
        return rows


class BestIterate:
    """Per image, the successful iterate with the smallest norm seen so far.

    ``x`` (B, C, H, W) starts as the clean images and ``norm`` (B,) as inf; ``update``
    records, in place, the iterates that succeed with a smaller norm (for the images ``rows``
    of the batch, default all); ``found`` tells which images have one; ``with_last`` sets the
    last iterate against the best one without a forward pass of its own.
    """

    def __init__(self, x: torch.Tensor) -> None:
        self.x = x.clone()
        self.norm = torch.full((x.shape[0],), float("inf"), device=x.device)

    def update(
        self,
        x_cur: torch.Tensor,
        success: torch.Tensor,
        norm: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> None:
        """x_cur (b, C, H, W), success (b,) bool and norm (b,) of the images ``rows`` (b,)."""
        if rows is None:
            better = success & (norm < self.norm)
            self.norm.copy_(torch.where(better, norm, self.norm))
            self.x.copy_(torch.where(better.view(-1, 1, 1, 1), x_cur, self.x))
            return
        better = success & (norm < self.norm[rows])
        self.norm[rows] = torch.where(better, norm, self.norm[rows])
        self.x[rows] = torch.where(better.view(-1, 1, 1, 1), x_cur, self.x[rows])

    def observe(
        self,
        x_cur: torch.Tensor,
        norm: torch.Tensor,
        logits: torch.Tensor,
        y: torch.Tensor,
        target: torch.Tensor | None,
    ) -> torch.Tensor:
        """``update`` with success read from the iterate's logits (B, K); returns it (B,)."""
        success = attack_success(logits.argmax(1), y, target)
        self.update(x_cur, success, norm)
        return success

    @property
    def found(self) -> torch.Tensor:
        """(B,) bool: images with a successful iterate."""
        return torch.isfinite(self.norm)

    def with_last(
        self, x_last: torch.Tensor, norm: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The images to return when the last iterate x_last (B, C, H, W), of norm (B,), was
        not judged yet: (images (B, C, H, W), rows (B,) bool). Per image the last iterate
        where it is smaller than the best one or none was found, else the best; ``rows``: the
        images where the last iterate stands in for a best one, and may stand only if it is
        adversarial (for ``BatchContext.fall_back(self.x, rows)``)."""
        smaller = norm < self.norm
        last = smaller | ~self.found
        return torch.where(last.view(-1, 1, 1, 1), x_last, self.x), smaller & self.found
