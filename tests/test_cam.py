import gc
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fcrattack import fcr_mask, find_layer, gradcam
from fcrattack.cam import normalize_maps
from fcrattack.models import create_model


class Tiny(nn.Module):
    """conv -> relu -> conv -> relu -> GAP -> linear, for a hand-computed Grad-CAM."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 5, 3, stride=2, padding=1)
        self.fc = nn.Linear(5, 3)

    def forward(self, x):
        a = F.relu(self.conv2(F.relu(self.conv1(x))))
        return self.fc(a.mean((2, 3)))


def _tiny():
    torch.manual_seed(0)
    return Tiny().eval()


def test_gradcam_matches_direct_autograd():
    model = _tiny()
    x = torch.rand(3, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 2, 1])
    # direct computation
    a = model.conv2(F.relu(model.conv1(x)))
    logits = model.fc(F.relu(a).mean((2, 3)))
    g = torch.autograd.grad(logits.gather(1, y[:, None]).sum(), a)[0]
    cam = F.relu((g.mean((2, 3), keepdim=True) * a).sum(1, keepdim=True))
    cam = F.interpolate(cam, size=(8, 8), mode="bilinear", align_corners=False)[:, 0]
    lo = cam.flatten(1).min(1).values[:, None, None]
    hi = cam.flatten(1).max(1).values[:, None, None]
    expected = (cam - lo) / (hi - lo)
    got = gradcam(model, x, y, layer="conv2")
    assert got.shape == (3, 8, 8)
    assert torch.allclose(got, expected.detach(), atol=1e-5)
    assert got.min() >= 0 and got.max() <= 1


def test_gradcam_default_class_is_prediction_and_true_class_differs(resnet20, correct_batch):
    x, y = correct_batch
    with torch.no_grad():
        pred = resnet20(x).argmax(1)
    assert torch.allclose(gradcam(resnet20, x), gradcam(resnet20, x, pred))
    other = (y + 1) % 10
    assert not torch.allclose(gradcam(resnet20, x, y), gradcam(resnet20, x, other))


def test_layer_auto_selection():
    x = torch.rand(1, 3, 32, 32)
    assert find_layer(create_model("resnet20").eval(), x) == "model.layer3"
    assert find_layer(create_model("resnet18").eval(), x) == "model.layer4"
    vgg = create_model("vgg11").eval()
    name = find_layer(vgg, x)
    # the VGG trap: the last module of `features` is a max-pool (and outputs 1x1 here);
    # the last convolution's activation (the ReLU before it) must be chosen
    feats = vgg.model.features
    assert isinstance(feats[-1], nn.MaxPool2d)
    assert name == f"model.features.{len(feats) - 2}"
    assert isinstance(dict(vgg.named_modules())[name], nn.ReLU)


def test_layer_auto_selection_skips_pooling_outputs():
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * 8 * 8, 4),
    ).eval()
    assert find_layer(model, torch.rand(1, 3, 16, 16)) == "1"


def test_model_without_convolution_is_a_clear_error():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 4)).eval()
    with pytest.raises(ValueError, match="no convolutional feature map"):
        gradcam(mlp, torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="no layer named 'nope'$"):
        gradcam(_tiny(), torch.rand(1, 3, 8, 8), layer="nope")


def test_a_layer_named_without_its_wrapper_is_pointed_to_the_full_name(resnet20, correct_batch):
    """A loaded model wraps its network as ``model``: ``layer3@0`` names ``model.layer3``."""
    x, y = correct_batch
    with pytest.raises(ValueError, match=r"no layer named 'layer3' \(did you mean 'model.layer3'"):
        gradcam(resnet20, x[:1], y[:1], layer="layer3@0")


def test_works_frozen_under_no_grad_and_restores_mode(resnet20, correct_batch):
    x, y = correct_batch
    for p in resnet20.parameters():
        p.grad = None  # other tests (torchattacks) may have left gradients on the shared model
    ref = gradcam(resnet20, x, y)
    assert all(p.grad is None for p in resnet20.parameters())
    for p in resnet20.parameters():
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            frozen = gradcam(resnet20, x, y)
    finally:
        for p in resnet20.parameters():
            p.requires_grad_(True)
    assert torch.allclose(ref, frozen)
    assert all(p.grad is None for p in resnet20.parameters())
    resnet20.train()
    resnet20.model.layer1.eval()
    try:
        gradcam(resnet20, x, y)
        assert resnet20.training and resnet20.model.layer2.training
        assert not resnet20.model.layer1.training
    finally:
        resnet20.eval()


def _tensor_count() -> int:
    gc.collect()
    with warnings.catch_warnings():  # isinstance() on some objects warns of deprecations
        warnings.simplefilter("ignore")
        return sum(1 for o in gc.get_objects() if isinstance(o, torch.Tensor))


def test_no_hooks_left_and_no_memory_growth(resnet20, correct_batch):
    x, y = correct_batch
    gradcam(resnet20, x, y)
    before = _tensor_count()
    for _ in range(5):
        gradcam(resnet20, x, y)
        gradcam(resnet20, x, y, layer="model.layer2")
    assert _tensor_count() <= before
    for m in resnet20.modules():
        assert not m._forward_hooks and not m._backward_hooks and not m._forward_pre_hooks


def test_gradcam_batch_equals_one_by_one(resnet20, correct_batch):
    x, y = correct_batch
    batch = gradcam(resnet20, x[:4], y[:4])
    single = torch.cat([gradcam(resnet20, x[i : i + 1], y[i : i + 1]) for i in range(4)])
    assert torch.allclose(batch, single, atol=1e-5)


def test_fcr_mask_threshold_and_empty_policy():
    cam = torch.tensor([[[0.0, 0.1], [0.2, 1.0]], [[0.0, 0.0], [0.0, 0.0]]])
    m = fcr_mask(cam, 0.2, empty="keep")
    assert m.shape == (2, 1, 2, 2)
    assert m[0, 0].tolist() == [[0, 0], [1, 1]] and m[1].sum() == 0
    assert fcr_mask(cam, 0.2)[1].sum() == 4  # empty -> whole image
    assert fcr_mask(cam[:1], 0.0).sum() == 4
    with pytest.raises(ValueError, match="threshold"):
        fcr_mask(cam, 1.5)


def test_normalize_maps_constant_map_is_zero():
    out = normalize_maps(torch.stack([torch.full((3, 3), 2.0), torch.arange(9.0).view(3, 3)]))
    assert out[0].abs().sum() == 0
    assert out[1].min() == 0 and out[1].max() == 1


def test_gradcam_validates_input(resnet20):
    with pytest.raises(ValueError, match="shape"):
        gradcam(resnet20, torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gradcam(resnet20, torch.rand(1, 3, 32, 32) * 2)
    with pytest.raises(ValueError, match="class index"):
        gradcam(resnet20, torch.rand(1, 3, 32, 32), torch.tensor([10]))


def test_a_map_holding_nan_is_refused():
    """Regression: ``fcr_mask`` of an all-NaN map was all ones (every comparison with NaN is
    False, so the mask was empty and then replaced by the whole image)."""
    cam = torch.rand(3, 8, 8)
    cam[1] = float("nan")
    with pytest.raises(ValueError, match=r"cam holds NaN values \(image 1\)"):
        fcr_mask(cam, 0.2)
    cam = torch.rand(3, 8, 8)  # a single NaN too
    cam[1, 0, 0] = cam[2, 3, 3] = float("nan")
    with pytest.raises(ValueError, match=r"\(image 1, 2\)"):
        fcr_mask(cam, 0.2)
