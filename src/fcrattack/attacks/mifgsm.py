"""M-DI2-FGSM: momentum (Dong et al., "Boosting Adversarial Attacks with Momentum", CVPR 2018)
plus input diversity (Xie et al., "Improving Transferability of Adversarial Examples with Input
Diversity", CVPR 2019), batched, on the ``GradientAttack``
template:

    g_k     = grad_x J(D(x_k), y)                (D: random resize-and-pad with probability p)
    m_{k+1} = decay * m_k + g_k / mean|g_k|      (per image; same direction as Dong's L1 norm)
    x_{k+1} = clip(Proj_eps(x_k + step_size * sign(m_{k+1})), 0, 1)

The defaults are the FCR paper's settings (no random start). ``diversity_prob=0`` gives MI-FGSM,
``decay=0`` DI2-FGSM, both I-FGSM.

Input diversity follows torchattacks' DIFGSM (``resize_rate`` 0.9): the image (H x W) is
resized bilinearly (align_corners=False, no antialiasing) to s x s' with
s in [floor(0.9 H), H) (s' likewise from W, same draw), placed at a random offset (top in
[0, H - s), left in [0, W - s')) and zero-padded back to H x W, so the model always sees its
own input size. Xie et al.'s original enlarges 299 -> [299, 330) and pads to 330 instead;
``resize_rate`` here must lie in (0, 1). Unlike torchattacks (one draw per batch), every image
draws its own size, offset and apply-or-not at every step, from its own generator, all drawn
once before the iterations (a (B, steps, 4) uniform tensor): an image gets the same
transformations in any batch. Resize and pad are one ``grid_sample`` (bilinear, border
clamping, zeros outside the placed image), which equals interpolate + pad.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..base.seeding import per_image_rand
from ..options import Float, Option
from .base import BatchContext
from .gradient import GradientAttack

_PAPER = {"eps": 16 / 255, "steps": 20, "step_size": 2 / 255, "decay": 1.0, "diversity_prob": 0.5}


class MIFGSM(GradientAttack):
    """Momentum iterative FGSM with input diversity (M-DI2-FGSM)."""

    name = "mifgsm"
    PAPER = {"cifar10": _PAPER, "imagenet": _PAPER}

    eps = GradientAttack.eps.replace(16 / 255)
    steps = GradientAttack.steps.replace(20)
    step_size = GradientAttack.step_size.replace(2 / 255)
    decay = Option(Float(min=0.0), 1.0, "momentum decay (0: no momentum)")
    diversity_prob = Option(
        Float(0.0, 1.0), 0.5, "probability of the random resize-and-pad at each step"
    )
    resize_rate = Option(
        Float(0.0, 1.0, min_open=True, max_open=True),
        0.9,
        "smallest resized size as a fraction of the image size",
    )

    def init_state(self, x: torch.Tensor, ctx: BatchContext) -> dict[str, torch.Tensor]:
        """Zero momentum, and (B, steps, 4) uniforms for the diversity (size, top, left, apply)."""
        state = {"momentum": torch.zeros_like(x)}
        if self.diversity_prob > 0:
            state["diversity"] = per_image_rand((self.steps, 4), ctx.generators, x.device)
        return state

    def transform(
        self, x_adv: torch.Tensor, state: dict[str, torch.Tensor], step: int
    ) -> torch.Tensor:
        """Input diversity with this step's draws (identity when ``diversity_prob`` is 0)."""
        if "diversity" not in state:
            return x_adv
        return self.diversify(x_adv, state["diversity"][:, step])

    def diversify(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Random resize-and-pad of x (B, C, H, W) from uniforms u (B, 4) in [0, 1); images with
        u[:, 3] >= diversity_prob pass unchanged. Differentiable in x."""
        b, _, h, w = x.shape
        axes = []
        inside = None
        for size, u_off in ((h, u[:, 1]), (w, u[:, 2])):
            low = int(size * self.resize_rate)
            new = low + torch.floor(u[:, 0] * (size - low))  # (B,) in [low, size)
            off = torch.floor(u_off * (size - new))  # (B,) in [0, size - new)
            pos = torch.arange(size, device=x.device, dtype=x.dtype) - off[:, None]
            # source pixel of bilinear interpolate (align_corners=False), as grid_sample coords
            src = (pos + 0.5) * (size / new[:, None]) - 0.5
            axes.append((2 * src + 1) / size - 1)
            ok = (pos >= 0) & (pos < new[:, None])
            inside = ok if inside is None else inside[:, :, None] & ok[:, None, :]
        gy, gx = axes
        grid = torch.stack((gx[:, None, :].expand(b, h, w), gy[:, :, None].expand(b, h, w)), -1)
        assert inside is not None  # set by the loop over the two axes
        out = F.grid_sample(
            x, grid, mode="bilinear", padding_mode="border", align_corners=False
        ) * inside[:, None].to(x.dtype)
        apply = (u[:, 3] < self.diversity_prob).view(-1, 1, 1, 1)
        return torch.where(apply, out, x)

    def gradient(
        self,
        x_adv: torch.Tensor,
        y: torch.Tensor,
        ctx: BatchContext,
        state: dict[str, torch.Tensor],
        step: int,
    ) -> torch.Tensor:
        """The momentum m (B, C, H, W), updated in place with this step's normalised gradient."""
        grad = super().gradient(x_adv, y, ctx, state, step)
        scale = grad.abs().mean((1, 2, 3), keepdim=True).clamp_min_(1e-12)
        return state["momentum"].mul_(self.decay).add_(grad.div_(scale))
