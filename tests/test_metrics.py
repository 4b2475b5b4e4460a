import math

import pytest
import torch

from fcrattack.metrics import (
    PSNR_255_OFFSET,
    asr,
    attack_success,
    perturbation_norms,
    quantize_uint8,
    summarize,
)


def _pair():
    x = torch.zeros(2, 3, 2, 2)
    adv = x.clone()
    adv[0, 0, 0, 0] = 0.5  # image 0: two values in two different pixels
    adv[0, 2, 1, 1] = 0.25
    adv[1, 0, 1, 0] = 0.1  # image 1: two values in the same pixel
    adv[1, 1, 1, 0] = 0.2
    return x, adv


def test_norms_match_hand_computation():
    x, adv = _pair()
    m = perturbation_norms(x, adv)
    assert m["l2"][0].item() == pytest.approx(math.sqrt(0.5**2 + 0.25**2))
    assert m["l2"][1].item() == pytest.approx(math.sqrt(0.1**2 + 0.2**2))
    assert m["l2_255"][0].item() == pytest.approx(255 * math.sqrt(0.3125))
    assert m["linf"].tolist() == pytest.approx([0.5, 0.2])
    assert m["linf_255"].tolist() == pytest.approx([127.5, 51.0])
    assert m["l0"].tolist() == [2, 2]
    assert m["l0_pixels"].tolist() == [2, 1]
    mse0 = 0.3125 / 12
    assert m["psnr"][0].item() == pytest.approx(10 * math.log10(1 / mse0), rel=1e-5)
    assert m["psnr_255"][0].item() == pytest.approx(10 * math.log10(255**2 / mse0), rel=1e-5)
    assert pytest.approx(48.1308, abs=1e-4) == PSNR_255_OFFSET


def test_unchanged_image_has_infinite_psnr_and_zero_norms():
    x = torch.rand(1, 3, 4, 4)
    m = perturbation_norms(x, x.clone())
    assert m["l2"].item() == 0 and m["l0"].item() == 0 and math.isinf(m["psnr"].item())


def test_l0_tolerance():
    x = torch.zeros(1, 1, 1, 3)
    adv = torch.tensor([[[[1e-4, 0.0, 0.5]]]])
    assert perturbation_norms(x, adv)["l0"].item() == 2
    assert perturbation_norms(x, adv, tol=1e-3)["l0"].item() == 1


def test_success_and_asr():
    pred, y = torch.tensor([1, 2, 3, 4]), torch.tensor([1, 0, 3, 0])
    assert attack_success(pred, y).tolist() == [False, True, False, True]
    target = torch.tensor([1, 1, 1, 4])
    assert attack_success(pred, y, target).tolist() == [True, False, False, True]
    succ = torch.tensor([True, True, False, False])
    assert asr(succ) == 0.5
    assert asr(succ, torch.tensor([True, True, True, False])) == pytest.approx(2 / 3)


def test_summarize_averages_norms_over_successful_valid_images():
    x, adv = _pair()
    m = perturbation_norms(x, adv)
    s = summarize(m, torch.tensor([True, False]), torch.tensor([True, True]))
    assert s["n"] == 2 and s["n_success"] == 1 and s["asr"] == 0.5
    assert s["l2"] == pytest.approx(m["l2"][0].item())


def test_quantize_uint8_gives_png_levels():
    x = torch.tensor([0.0, 0.5 / 255, 0.499, 1.0, 1.2])
    q = quantize_uint8(x)
    assert torch.equal(q * 255, torch.round(q * 255))
    assert q.tolist()[0] == 0 and q.tolist()[-1] == 1


def test_norms_count_nan_as_changed():
    """Regression: a NaN pixel counted as unchanged (L0 = 0), so NaN images passed as
    successful adversarial examples of zero size."""
    x = torch.zeros(1, 3, 2, 2)
    x_adv = x.clone()
    x_adv[0, 1, 0, 0] = math.nan
    norms = perturbation_norms(x, x_adv)
    assert norms["l0"].item() == 1 and norms["l0_pixels"].item() == 1
    assert math.isnan(norms["l2"].item())
