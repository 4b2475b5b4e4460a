"""Equal-area region sources, the CAM variants, SmoothGrad and the paired ratio interval."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fcrattack.cam import CAM_METHODS, fcr_region, gradcam
from fcrattack.regions import SOURCES, EqualAreaRegions, smoothgrad, top_area_mask

# --- the CAM formulas, by hand on one 2 x 2 map ---------------------------------------------
A = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)
G = torch.tensor([[1.0, -1.0], [0.0, 2.0]]).view(1, 1, 2, 2)


def test_cam_formulas_match_hand_computed_values():
    # Grad-CAM: w = mean(G) = 0.5
    assert torch.allclose(CAM_METHODS["gradcam"](A, G), 0.5 * A[:, 0])
    # XGrad-CAM: w = sum(G * A) / sum(A) = (1 - 2 + 0 + 8) / 10 = 0.7
    assert torch.allclose(CAM_METHODS["xgradcam"](A, G), 0.7 * A[:, 0], atol=1e-6)
    # LayerCAM: ReLU(G) * A per position
    assert torch.allclose(CAM_METHODS["layercam"](A, G), torch.tensor([[[1.0, 0.0], [0.0, 8.0]]]))
    # Grad-CAM++: alpha = G^2 / (2 G^2 + sum(A) G^3): 1/12 at G = 1, 4/88 at G = 2 (G = -1 is
    # cut by ReLU(G), G = 0 has alpha 0): w = 1/12 + 2 * 4/88
    w = 1 / 12 + 2 * 4 / 88
    assert torch.allclose(CAM_METHODS["gradcam++"](A, G), w * A[:, 0], atol=1e-6)


def test_unknown_cam_method_is_refused(resnet20, correct_batch):
    x, y = correct_batch
    with pytest.raises(ValueError, match="unknown CAM method 'scorecam'"):
        gradcam(resnet20, x[:2], y[:2], method="scorecam")


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_every_cam_method_is_a_normalised_map_of_the_class(resnet20, correct_batch, method):
    x, y = correct_batch
    cam = gradcam(resnet20, x, y, method=method)
    assert cam.shape == (len(x), 32, 32) and cam.min() >= 0 and cam.max() <= 1
    assert (cam.flatten(1).amax(1) == 1).all()  # no image without evidence on this batch
    other = gradcam(resnet20, x, (y + 1) % 10, method=method)
    assert not torch.allclose(cam, other)  # the map depends on the class


def test_xgradcam_equals_gradcam_on_a_pooled_linear_head(resnet20, correct_batch):
    """ResNet-20's last map is average-pooled into a linear layer: dY/dA is constant over
    positions, so XGrad-CAM's weights equal Grad-CAM's (stated in the report)."""
    x, y = correct_batch
    a, b = gradcam(resnet20, x, y), gradcam(resnet20, x, y, method="xgradcam")
    assert torch.allclose(a, b, atol=1e-5)


# --- SmoothGrad ------------------------------------------------------------------------------
class Linear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(x.flatten(1))


def test_smoothgrad_of_a_linear_model_is_its_weights():
    """The gradient of a linear model does not depend on the noise: the map is the
    normalised max over channels of |W_c|."""
    torch.manual_seed(0)
    model = Linear()
    x, y = torch.rand(3, 3, 8, 8), torch.tensor([0, 2, 3])
    w = model.fc.weight.detach().view(4, 3, 8, 8).abs().amax(1)[y]
    lo, hi = w.flatten(1).amin(1), w.flatten(1).amax(1)
    expect = (w - lo[:, None, None]) / (hi - lo)[:, None, None]
    assert torch.allclose(smoothgrad(model, x, y, samples=3), expect, atol=1e-5)


def test_smoothgrad_is_seeded_per_image_and_leaves_the_global_rng(resnet20, correct_batch):
    x, y = correct_batch
    ids = [f"img{i}" for i in range(len(x))]
    state = torch.random.get_rng_state()
    whole = smoothgrad(resnet20, x, y, samples=4, ids=ids)
    assert torch.equal(torch.random.get_rng_state(), state)
    parts = torch.cat(
        [
            smoothgrad(resnet20, x[i : i + 5], y[i : i + 5], samples=4, ids=ids[i : i + 5])
            for i in (0, 5, 10, 15)
        ]
    )
    assert torch.allclose(whole, parts, atol=1e-6)  # batch == one batch at a time
    other = smoothgrad(resnet20, x, y, samples=4, ids=ids, seed=1)
    assert not torch.allclose(whole, other)
    assert whole.shape == (len(x), 32, 32) and whole.min() >= 0 and whole.max() <= 1


def test_smoothgrad_rejects_bad_options(resnet20, correct_batch):
    x, y = correct_batch
    with pytest.raises(ValueError, match="samples"):
        smoothgrad(resnet20, x, y, samples=0)
    with pytest.raises(ValueError, match="sigma"):
        smoothgrad(resnet20, x, y, sigma=math.nan)
    with pytest.raises(ValueError, match="class index 10"):
        smoothgrad(resnet20, x[:1], torch.tensor([10]))
    with pytest.raises(TypeError, match="integer class indices"):
        smoothgrad(resnet20, x[:1], torch.tensor([1.0]))


# --- equal-area masks ------------------------------------------------------------------------
def test_top_area_mask_takes_exactly_k_highest_with_ties_by_index():
    ranking = torch.tensor([[[0.5, 0.9], [0.5, 0.1]], [[1.0, 1.0], [1.0, 1.0]]])
    mask = top_area_mask(ranking, torch.tensor([2, 3]))
    assert mask.shape == (2, 1, 2, 2)
    assert mask[0, 0].tolist() == [[1.0, 1.0], [0.0, 0.0]]  # 0.9, then the first 0.5
    assert mask[1, 0].tolist() == [[1.0, 1.0], [1.0, 0.0]]  # all tied: row-major order
    assert top_area_mask(ranking, torch.tensor([0, 4])).sum((1, 2, 3)).tolist() == [0.0, 4.0]
    with pytest.raises(ValueError, match="area must lie in"):
        top_area_mask(ranking, torch.tensor([5, 1]))
    with pytest.raises(ValueError, match="integer tensor"):
        top_area_mask(ranking, torch.tensor([1.0, 2.0]))


@pytest.fixture(scope="module")
def regions(resnet20, correct_batch):
    x, y = correct_batch
    return EqualAreaRegions(resnet20, x, y, ids=[f"img{i}" for i in range(len(x))], batch_size=6)


@pytest.mark.parametrize("t", [0.2, 0.5, 0.7])
def test_every_source_covers_the_fcr_area_of_each_image(regions, t):
    area = regions.area(t)
    fcr = fcr_region(regions.model, regions.x, regions.y, t=t)
    assert torch.equal(area, fcr.flatten(1).sum(1).long())
    assert torch.equal(regions.mask("fcr", t), fcr)  # the FCR source is the FCR mask
    for source in SOURCES:
        mask = regions.mask(source, t)
        assert mask.shape == fcr.shape and set(mask.unique().tolist()) <= {0.0, 1.0}
        assert torch.equal(mask.flatten(1).sum(1).long(), area), source


def test_sources_are_the_regions_they_name(regions):
    t = 0.5
    fcr, cam = regions.mask("fcr", t), gradcam(regions.model, regions.x, regions.y)
    small = regions.area(t) <= 512  # at most half the image: the lowest pixels are elsewhere
    assert ((regions.mask("lowest-cam", t) * fcr).flatten(1).sum(1)[small] == 0).all()
    # another image's map: image i takes image i + 1's Grad-CAM at its own area, i.e. no
    # pixel outside the region has a higher value of that map than one inside
    shuffled, other = regions.mask("shuffled-fcr", t)[:, 0], cam.roll(-1, 0)
    low_in = torch.where(shuffled == 1, other, math.inf).flatten(1).amin(1)
    high_out = torch.where(shuffled == 0, other, -math.inf).flatten(1).amax(1)
    assert (low_in >= high_out).all()
    assert not torch.equal(shuffled, fcr[:, 0])
    disc = regions.mask("centred-disc", t)
    assert (disc[:, 0, 15:17, 15:17] == 1).all()  # the centre is always inside
    rows, cols = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    dist = ((rows - 15.5) ** 2 + (cols - 15.5) ** 2).expand_as(disc[:, 0])
    inside, outside = disc[:, 0] == 1, disc[:, 0] == 0
    far_in = torch.where(inside, dist, -1.0).flatten(1).amax(1)
    near_out = torch.where(outside, dist, math.inf).flatten(1).amin(1)
    assert (far_in <= near_out).all()  # a disc: every pixel inside is nearer than any outside
    for source in ("random-pixels", "random-disc"):  # not the FCR, and seeded per image
        overlap = (regions.mask(source, t) * fcr).sum() / fcr.sum()
        assert overlap < 0.9
    again = EqualAreaRegions(
        regions.model, regions.x[:5], regions.y[:5], ids=regions.ids[:5], batch_size=2
    )
    for source in ("random-pixels", "random-disc", "smoothgrad", "gradcam++"):
        diff = (again.map(source) - regions.map(source)[:5]).abs().amax((1, 2))
        # SmoothGrad: a float difference between batch sizes can flip a ReLU on a noisy copy
        assert (diff < (1e-2 if source == "smoothgrad" else 1e-5)).all(), (source, diff)


def test_ties_at_the_cut_are_broken_at_random_not_by_position(regions):
    """The lowest-CAM region of a small area cuts inside the zeros of the ReLU map: its
    pixels must spread over the zeros, not fill them from the top rows."""
    cam = regions.map("fcr")
    zeros = (cam == 0).flatten(1).sum(1)
    # t = 0.7, or 0.8 where fewer than 4 images have more zeros than the area at 0.7 (the
    # default model's maps have fewer zeros than the akamaster ResNet-20's)
    t = next((t for t in (0.7, 0.8) if (zeros > regions.area(t)).sum() >= 4), 0.8)
    lowest = regions.mask("lowest-cam", t)[:, 0]
    tied = zeros > regions.area(t)  # more zeros than the area
    assert tied.sum() >= 4
    rows = torch.arange(32.0)[None, :, None].expand_as(lowest)
    mean_row = (rows * lowest).flatten(1).sum(1) / lowest.flatten(1).sum(1)
    zero_row = (rows * (cam == 0)).flatten(1).sum(1) / (cam == 0).flatten(1).sum(1)
    assert (mean_row[tied] - zero_row[tied]).abs().mean() < 2  # row-major order: 3.7 here
    assert ((lowest == 1) <= (cam == 0))[tied].all()  # still the lowest pixels
    ranking = torch.zeros(2, 4, 4)
    keys = torch.rand(2, 4, 4, generator=torch.Generator().manual_seed(0))
    mask = top_area_mask(ranking, torch.tensor([3, 5]), keys)[:, 0]
    for i, k in enumerate((3, 5)):  # the k highest keys win among equal ranks
        assert torch.equal(
            mask[i].flatten().nonzero()[:, 0].sort().values,
            keys[i].flatten().topk(k).indices.sort().values,
        )
    with pytest.raises(ValueError, match="tiebreak must have the shape"):
        top_area_mask(ranking, torch.tensor([1, 1]), keys[:, :2])


def test_an_image_without_grad_cam_evidence_counts_the_whole_image():
    class Blind(nn.Module):  # the last map is constant: Grad-CAM is all zero
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 2, 3, padding=1)
            self.fc = nn.Linear(2, 3)

        def forward(self, x):
            return self.fc(self.conv(x * 0).mean((2, 3)))

    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    regions = EqualAreaRegions(Blind(), x, y, ids=["a", "b"])
    assert regions.area(0.5).tolist() == [64, 64]
    assert (regions.mask("random-disc", 0.5) == 1).all()


def test_smoothgrad_and_regions_work_in_inference_mode(resnet20, correct_batch):
    x, y = correct_batch
    with torch.inference_mode():
        sg = smoothgrad(resnet20, x[:2], y[:2], samples=2)
        mask = EqualAreaRegions(resnet20, x[:2], y[:2]).mask("layercam", 0.5)
    assert sg.shape == (2, 32, 32) and mask.shape == (2, 1, 32, 32)


def test_regions_reject_bad_arguments(regions):
    with pytest.raises(ValueError, match="unknown region source 'middle'"):
        regions.mask("middle", 0.2)
    with pytest.raises(ValueError, match=r"threshold t must lie in \[0, 1\]"):
        regions.area(1.5)
    with pytest.raises(ValueError, match="batch_size"):
        EqualAreaRegions(regions.model, regions.x, regions.y, batch_size=0)
    with pytest.raises(ValueError, match="ids has 1 entries for 16 images"):
        EqualAreaRegions(regions.model, regions.x, regions.y, ids=["a"])
    with pytest.raises(ValueError, match="ids has 1 entries for 16 images"):
        smoothgrad(regions.model, regions.x, regions.y, ids=["a"])


# --- paired ratio -----------------------------------------------------------------------------
