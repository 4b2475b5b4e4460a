"""The attack template's own forward passes (``Attack.run``), on the real CIFAR-10 ResNet-20 and
JPEG test images: for every attack, what a result reports equals fresh forward passes of the
caller's model (the clean prediction, success on the returned images, success after 8-bit
rounding); region DDN takes its clean logits from its first forward pass and lets the re-check
judge its last iterate, with the results of separate passes; labels and targets are checked
against the model's classes before any attack runs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fcrattack.attacks import ATTACKS, FCR, Execution, RegionDDN
from fcrattack.attacks.base import BatchContext
from fcrattack.attacks.grid import supports_grid
from fcrattack.metrics import attack_success, quantize_uint8
from test_invariants import NAMES, make


class Counted(nn.Module):
    """The model, counting the rows of every forward pass."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.rows = model, []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows.append(x.shape[0])
        return self.model(x)


@pytest.fixture(scope="module")
def mixed(resnet20, correct_batch):
    """6 images the model classifies correctly, the last 2 labelled as another class (so that
    the clean prediction differs from the label)."""
    x, y = correct_batch
    y = y[:6].clone()
    y[4:] = (y[4:] + 1) % 10
    return x[:6].clone(), y


def _fresh(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(images).argmax(1)


@pytest.mark.parametrize(
    "name, quantize",
    [(n, False) for n in NAMES] + [(n, True) for n in NAMES if supports_grid(ATTACKS[n])],
)
def test_reports_equal_fresh_forward_passes(name, quantize, resnet20, mixed):
    x, y = mixed
    res = make(name, resnet20, **({"quantize": True} if quantize else {})).run(x, y)
    clean = _fresh(resnet20, x)
    assert not torch.equal(clean, y)  # the wrongly labelled images are in
    assert torch.equal(res.pred_clean, clean)
    assert torch.equal(res.clean_correct, clean == y)
    assert torch.equal(res.pred_adv, _fresh(resnet20, res.x_adv))
    assert torch.equal(res.success, attack_success(res.pred_adv, y))
    pred_q = _fresh(resnet20, quantize_uint8(res.x_adv))
    assert torch.equal(res.success_uint8, attack_success(pred_q, y))


def test_region_ddn_reports_the_clean_logits_once(monkeypatch, resnet20, mixed):
    """The logits ``run()`` takes the clean prediction from are those of the unperturbed
    images (a perturbed iterate's differ by far more than the tolerance)."""
    seen: list[torch.Tensor] = []
    report = BatchContext.report_clean

    def spy(ctx: BatchContext, logits: torch.Tensor) -> None:
        seen.append(logits.detach().clone())
        report(ctx, logits)

    monkeypatch.setattr(BatchContext, "report_clean", spy)
    x, y = mixed
    res = RegionDDN(resnet20, steps=5).run(x, y)
    assert len(seen) == 1
    with torch.no_grad():
        clean = resnet20(x)
    torch.testing.assert_close(seen[0], clean, rtol=0, atol=1e-5)
    assert torch.equal(res.pred_clean, clean.argmax(1))


@pytest.mark.parametrize("quantize", [False, True])
def test_region_ddn_makes_no_clean_or_last_iterate_pass(resnet20, correct_batch, quantize):
    """Forward passes of region DDN with a given mask: one image for the number of classes
    (once per model), the steps, the re-check, the re-check of the images whose last iterate
    failed it (fewer rows), the 8-bit re-check."""
    x, y = correct_batch
    model = Counted(resnet20).eval()
    attack = RegionDDN(model, steps=10, quantize=quantize)
    mask = torch.ones(len(x), 1, *x.shape[2:])
    attack.run(x, y, mask=mask)
    b = len(x)
    assert model.rows[:12] == [1] + [b] * 10 + [b] and model.rows[-1] == b
    assert len(model.rows) <= 14 and all(r < b for r in model.rows[12:-1])
    model.rows.clear()
    attack.run(x, y, mask=mask)
    assert model.rows[0] == len(x)  # the number of classes is known


@pytest.mark.parametrize("execution", [Execution(channels_last=True), Execution(autocast="bf16")])
def test_fast_paths_keep_a_clean_forward_pass(resnet20, correct_batch, execution):
    """With a fast path the iterations see another model: the clean prediction is a forward
    pass of the caller's model (a full batch more than without)."""
    x, y = correct_batch
    x, y = x[:4], y[:4]
    counts = []
    for ex in (Execution(), execution):
        model = Counted(resnet20).eval()
        RegionDDN(model, steps=3, select="last", execution=ex).run(
            x, y, mask=torch.ones(4, 1, 32, 32)
        )
        counts.append(model.rows.count(4))
    assert counts[1] == counts[0] + 1


def _own_last_pass(cls: type) -> type:
    """``cls`` judging its last iterate with a forward pass of its own (``perturb`` as it was
    before ``run()``'s re-check stood in for that pass); counts the images where the last
    iterate failed and the best one was returned instead."""

    class OwnLastPass(cls):  # type: ignore[misc,valid-type]
        fell_back = 0

        def perturb(self, x, y, ctx):
            x_adv = super().perturb(x, y, ctx)
            best, rows = ctx.fallback
            ctx.fallback = None
            with torch.no_grad():
                adv = attack_success(self.model(x_adv).argmax(1), y, ctx.target)
            OwnLastPass.fell_back += int((rows & ~adv).sum())
            return torch.where((rows & ~adv).view(-1, 1, 1, 1), best, x_adv)

    return OwnLastPass


@pytest.mark.parametrize(
    "cls, options, falls_back",
    [
        (RegionDDN, {"steps": 20}, True),
        (RegionDDN, {"steps": 20, "quantize": True}, True),
        (RegionDDN, {"steps": 20, "targeted": True}, False),
        (FCR, {"steps": 5, "lr": 0.1, "select": "best"}, False),
    ],
)
def test_rechecked_last_iterate_equals_its_own_pass(
    resnet20, correct_batch, cls, options, falls_back
):
    """``falls_back``: whether these images have a last iterate that is smaller than the best
    one and not adversarial (the case the re-check settles)."""
    x, y = correct_batch
    target = (y + 1) % 10 if options.get("targeted") else None
    own = _own_last_pass(cls)
    ref = own(resnet20, **options).run(x, y, target=target)
    res = cls(resnet20, **options).run(x, y, target=target)
    assert own.fell_back > 0 or not falls_back
    assert torch.equal(res.x_adv, ref.x_adv)
    assert res.records() == ref.records()


@pytest.mark.parametrize("field", ["y", "target"])
def test_labels_checked_against_the_classes_before_the_attack(resnet20, correct_batch, field):
    x, y = correct_batch[0][:2], correct_batch[1][:2]
    model = Counted(resnet20).eval()
    if field == "y":
        attack, kwargs = RegionDDN(model, steps=2), {"y": torch.tensor([3, 10])}
    else:
        attack = RegionDDN(model, steps=2, targeted=True)
        kwargs = {"y": y, "target": torch.tensor([10, 10])}
    with pytest.raises(ValueError, match=f"{field} has class index 10 but the model has 10"):
        attack.run(x, **kwargs)
    assert model.rows == [1]  # one image's forward pass; no attack ran
