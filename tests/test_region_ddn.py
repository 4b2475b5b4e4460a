"""RegionDDN (region-ddn, formerly fcr-ddn) on the real CIFAR-10 ResNet-20 and JPEG test images."""

from __future__ import annotations

import pytest
import torch

from fcrattack.attacks import ATTACKS, RegionDDN, attack_class
from fcrattack.attacks.base import BatchContext
from fcrattack.metrics import attack_success

FAST = {"steps": 15}  # a modest budget
# fcrattack's earlier region attack (DDN's radius rule from init_eps with a radius search); a
# modest budget: eps can shrink to init_eps * (1 - gamma)^steps = 0.5 * 0.85^15 ~ 0.044
DDN = {
    "steps": 15,
    "radius": "ddn",
    "init_eps": 0.5,
    "gamma": 0.15,
    "gamma_final": 0.15,
    "loss": "ce",
    "init_search": 10,
}


@pytest.fixture(scope="module")
def attacked(resnet20, correct_batch):
    x, y = correct_batch
    x0 = x.clone()
    return x, y, x0, RegionDDN(resnet20, **FAST).run(x, y)


def test_registered_with_the_old_name_as_alias():
    assert ATTACKS["region-ddn"] is RegionDDN and "fcr-ddn" not in ATTACKS
    assert attack_class("fcr-ddn") is RegionDDN


def test_input_unchanged(attacked):
    x, _, x0, _ = attacked
    assert torch.equal(x, x0)


def test_only_inside_fcr_mask_and_in_range(attacked):
    x, _, _, res = attacked
    mask = res.mask
    assert mask is not None and mask.shape == (len(x), 1, 32, 32)
    assert 0 < mask.mean() < 1  # t = 0.2: a proper part of the image
    outside = ((res.x_adv - x) * (1 - mask)).abs()
    assert outside.max() == 0
    assert res.x_adv.min() >= 0 and res.x_adv.max() <= 1
    assert (res.x_adv != x).any()


def test_success_rechecked_and_small(resnet20, attacked):
    x, y, _, res = attacked
    with torch.no_grad():
        pred = resnet20(res.x_adv).argmax(1)
    assert torch.equal(pred, res.pred_adv)
    assert torch.equal(attack_success(pred, y), res.success)
    assert res.success.float().mean() >= 0.95
    l2 = res.norms["l2"][res.success]
    assert l2.mean() < 0.25  # well below init_eps = 0.5: the norm was minimised


def test_best_no_larger_than_last(resnet20, correct_batch, attacked):
    """The same trajectory (deterministic), returning its last iterate instead: where that one
    succeeded, the kept smallest-L2 adversarial iterate is no larger."""
    x, y = correct_batch
    best = attacked[3]
    last = RegionDDN(resnet20, select="last", **FAST).run(x[:6], y[:6])
    both = last.success & best.success[:6]
    assert both.any()
    assert (best.norms["l2"][:6][both] <= last.norms["l2"][both] + 1e-6).all()


def test_deterministic(resnet20, correct_batch):
    x, y = correct_batch
    a = RegionDDN(resnet20, steps=3, seed=3).run(x[:2], y[:2])
    b = RegionDDN(resnet20, steps=3, seed=3).run(x[:2], y[:2])
    assert torch.equal(a.x_adv, b.x_adv)


def test_t0_is_full_mask(resnet20, correct_batch):
    x, y = correct_batch
    atk = RegionDDN(resnet20, t=0.0)
    assert torch.equal(atk.default_mask(x, y, None).mask, torch.ones(len(x), 1, 32, 32))


def test_targeted(resnet20, correct_batch):
    x, y = correct_batch
    x, y = x[:4], y[:4]
    target = (y + 1) % 10
    res = RegionDDN(resnet20, targeted=True, **FAST).run(x, y, target=target)
    assert res.success.all()
    assert torch.equal(res.pred_adv, target)


def test_quantize_on_8bit_grid(resnet20, correct_batch):
    x, y = correct_batch
    res = RegionDDN(resnet20, steps=5, quantize=True).run(x[:2], y[:2])
    levels = res.x_adv * 255
    assert (levels - levels.round()).abs().max() < 1e-3
    assert ((res.x_adv - x[:2]) * (1 - res.mask)).abs().max() == 0


def test_initial_radius_search(resnet20, correct_batch):
    """The k = 0 search returns, per image, a radius r <= eps at which x + r * g is adversarial
    (fresh forward pass) or eps where none was, and it lowers the final L2 at a small budget."""
    x, y = correct_batch
    atk = RegionDDN(resnet20, t=0.0, **DDN)
    grad = torch.func.grad(
        lambda z: torch.nn.functional.cross_entropy(resnet20(z), y, reduction="sum")
    )(x)
    g = grad / grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    eps = torch.full((len(x), 1, 1, 1), 1.0)
    r = atk._search_radius(x, y, g, eps, BatchContext(None, None, [], slice(None)))
    with torch.no_grad():
        adv = resnet20((x + r * g).clamp(0, 1)).argmax(1) != y
        at_eps = resnet20((x + eps * g).clamp(0, 1)).argmax(1) != y
    moved = (r < eps).flatten()
    assert at_eps.any() and torch.equal(adv, moved | at_eps)
    assert (r[at_eps] < 0.5).all() and torch.equal(r[~adv], eps[~adv])
    with_search = RegionDDN(resnet20, **DDN).run(x, y)
    without = RegionDDN(resnet20, **{**DDN, "init_search": 0}).run(x, y)
    both = with_search.success & without.success
    assert both.sum() >= 12
    assert with_search.norms["l2"][both].mean() < without.norms["l2"][both].mean()


@pytest.mark.parametrize(
    "bad",
    [
        {"steps": -1},
        {"init_search": -1},
        {"gamma": 0.0},
        {"gamma": 1.0},
        {"init_eps": 0.0},
        {"min_step_size": 2.0},
        {"loss": "l1"},
        {"select": "first"},
        {"t": 1.5},
    ],
)
def test_rejects_bad_options(resnet20, bad):
    with pytest.raises(ValueError):
        RegionDDN(resnet20, **bad)


def test_fmn_radius_beats_the_earlier_ddn_schedule_at_a_small_budget(resnet20, correct_batch):
    """The default (FMN's radius rule, margin then CE) reaches a smaller mean L2 in
    20 steps than the earlier DDN schedule with its radius search, with 100 % success."""
    x, y = correct_batch
    new = RegionDDN(resnet20, t=0.0, steps=20).run(x, y)
    old = RegionDDN(
        resnet20, t=0.0, **{**DDN, "steps": 20, "gamma": 0.05, "gamma_final": 0.05, "init_eps": 1.0}
    ).run(x, y)
    assert new.success.all() and old.success.all()
    assert new.norms["l2"].mean() < old.norms["l2"].mean()
