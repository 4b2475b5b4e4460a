"""Shared fixtures: real data and models from ../shared (FCRATTACK_SHARED overrides the path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fcrattack.data import cifar10, shared_root
from fcrattack.models import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_root()
CIFAR_JPEG = SHARED / "data" / "cifar10-jpeg"
IMAGENET_SAMPLES = SHARED / "data" / "imagenet-samples"
AKAMASTER = SHARED / "models" / "cifar10-resnet-akamaster"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"real data not found at {path} (set FCRATTACK_SHARED)")
    return path


def akamaster_weights(depth: int) -> Path:
    return next(_need(AKAMASTER).glob(f"resnet{depth}-*.th"))


@pytest.fixture(scope="session")
def resnet20() -> torch.nn.Module:
    """The real pretrained CIFAR-10 ResNet-20 (akamaster), eval mode, takes [0, 1] images."""
    return load_checkpoint(akamaster_weights(20), "resnet20")


@pytest.fixture(scope="session")
def cifar_test():
    """200 JPEG CIFAR-10 test images (seeded subset), float [0, 1]."""
    return cifar10(_need(CIFAR_JPEG), "test", n=200, seed=0)


@pytest.fixture(scope="session")
def correct_batch(resnet20, cifar_test):
    """(x, y): the first 16 of the subset that ResNet-20 classifies correctly."""
    with torch.no_grad():
        ok = resnet20(cifar_test.images).argmax(1) == cifar_test.labels
    return cifar_test.images[ok][:16].clone(), cifar_test.labels[ok][:16].clone()


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread for the whole suite: the tests run many small batches, where
    OpenMP's spin-waiting between threads on a small (often shared) CPU costs more than it
    gains (measured 1.5-10x slower with 2 threads on the 2-core CI machine under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
