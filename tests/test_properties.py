"""Property-based tests of the attack API on a small random conv net (fast, many shapes)."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from fcrattack.attacks import ATTACKS, FCR, MaskedFGSM


def _net(classes: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, classes),
    ).eval()


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
NETS = {(k, d): _net(k).to(d) for k in (2, 10) for d in DEVICES}
devices = st.sampled_from(DEVICES)

images = st.tuples(
    st.integers(1, 3),
    st.integers(4, 12),
    st.integers(4, 12),
    st.sampled_from([torch.float32, torch.float64]),
    st.integers(0, 2**16),
)


def _batch(spec, classes, device="cpu"):
    n, h, w, dtype, seed = spec
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, h, w, generator=g, dtype=torch.float64).to(dtype)
    x[0, 0, 0, 0] = 0.0  # exact range ends are legal input
    x[-1, -1, -1, -1] = 1.0
    return x.to(device), torch.randint(0, classes, (n,), generator=g).to(device)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    spec=images,
    classes=st.sampled_from([2, 10]),
    t=st.floats(0, 1),
    steps=st.integers(0, 3),
    jt=st.sampled_from(["literal", "scaled", "distillation"]),
    select=st.sampled_from(["last", "best"]),
    lr=st.floats(1e-3, 50),
    scale=st.sampled_from([1.0, 255.0, (4.0, 4.5, 5.0)]),
    empty=st.sampled_from(["full", "keep"]),
    device=devices,
)
def test_fcr_outputs_in_range_and_inside_mask(
    spec, classes, t, steps, jt, select, lr, scale, empty, device
):
    x, y = _batch(spec, classes, device)
    x0 = x.clone()
    r = FCR(
        NETS[classes, device],
        t=t,
        steps=steps,
        jt=jt,
        select=select,
        lr=lr,
        scale=scale,
        empty_mask=empty,
    ).run(x, y)
    assert torch.equal(x, x0)
    x = x.cpu()  # results live on the CPU
    assert r.x_adv.shape == x.shape and torch.isfinite(r.x_adv).all()
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert ((r.x_adv - x.float()) * (1 - r.mask)).abs().max() == 0
    if t == 0:
        assert r.mask.min() == 1


@settings(max_examples=20, deadline=None)
@given(
    spec=images, eps1=st.floats(0, 0.5), eps2=st.floats(0, 0.5), t=st.floats(0, 1), device=devices
)
def test_masked_fgsm_budgets(spec, eps1, eps2, t, device):
    x, y = _batch(spec, 10, device)
    r = MaskedFGSM(NETS[10, device], eps1=eps1, eps2=eps2, t=t).run(x, y)
    d = (r.x_adv - x.cpu().float()).abs()
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert (d * r.mask).max() <= eps1 + 1e-6 and (d * (1 - r.mask)).max() <= eps2 + 1e-6


@settings(max_examples=15, deadline=None)
@given(spec=images, name=st.sampled_from(sorted(ATTACKS)), device=devices)
def test_every_registered_attack_keeps_range_and_a_user_mask(spec, name, device):
    x, y = _batch(spec, 10, device)
    cls = ATTACKS[name]
    if cls is MaskedFGSM:
        return  # two-region attack: covered above
    n, _, h, w = x.shape
    mask = torch.zeros(n, 1, h, w)
    mask[..., : h // 2 + 1, :] = 1
    kwargs = {"steps": 2} if "steps" in cls.options() else {}  # declared options
    try:
        r = cls(NETS[10, device], **kwargs).run(x, y, mask=mask)
    except (ValueError, TypeError) as exc:  # documented errors only, with a message
        assert str(exc)
        return
    assert r.x_adv.min() >= 0 and r.x_adv.max() <= 1
    assert ((r.x_adv - x.cpu().float()) * (1 - mask)).abs().max() == 0


def test_documented_errors_only_for_bad_inputs():
    net = NETS[10, "cpu"]
    with pytest.raises(ValueError, match="mask must have shape"):
        FCR(net).run(torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), mask=torch.ones(2, 1, 4, 4))
    with pytest.raises(ValueError, match="ids"):
        FCR(net).run(torch.rand(2, 3, 8, 8), torch.tensor([0, 1]), ids=[1])
    with pytest.raises(ValueError, match="empty batch"):
        FCR(net).run(torch.rand(0, 3, 8, 8), torch.zeros(0, dtype=torch.long))
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    with pytest.raises(ValueError, match="x is on the meta device"):  # was torch's .item() error
        FCR(net).run(x.to("meta"), y)
    with pytest.raises(ValueError, match="y is on the meta device"):
        FCR(net).run(x, y.to("meta"))
    with pytest.raises(ValueError, match="mask is on the meta device"):  # torch's copy error
        FCR(net).run(x, y, mask=torch.ones(2, 1, 8, 8, device="meta"))
