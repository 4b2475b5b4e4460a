import torch

import fcrattack
from conftest import CIFAR_JPEG, _need
from fcrattack.data import cifar10, samples


def test_embedded_default_model_accuracy_on_jpeg_test_split():
    """The shipped weights reach 87.78 % on all 10,000 JPEG test images (README)."""
    model = fcrattack.default_model()
    assert not model.training
    data = cifar10(_need(CIFAR_JPEG, "all 10,000 test images"), "test")
    with torch.no_grad():
        correct = sum(
            int((model(data.images[i : i + 500]).argmax(1) == data.labels[i : i + 500]).sum())
            for i in range(0, len(data), 500)
        )
    assert abs(correct / len(data) - 0.8778) < 0.002


def test_embedded_default_model_on_the_bundled_samples():
    """37 of the 40 bundled samples are classified correctly (a check of the shipped weights
    that needs nothing outside the package)."""
    model = fcrattack.default_model()
    data = samples()
    with torch.no_grad():
        pred = model(data.images).argmax(1)
    assert int((pred == data.labels).sum()) == 37
