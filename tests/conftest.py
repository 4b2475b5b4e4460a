"""Shared fixtures: real data and models from ../shared (FCRATTACK_SHARED overrides the path),
and what the package ships where ../shared is absent (a clone of the repository alone).

With ../shared the fixtures are the real data and pretrained models. Without it they fall back
to what the package ships: the embedded default ResNet-20 (fine-tuned on JPEG CIFAR-10) for
``resnet20``; the 40 bundled CIFAR-10 test images for ``cifar_test``, written as JPEG class
folders for ``cifar_jpeg`` and enlarged to photos of different sizes for ``photos``; the
default model's weights (and a freshly initialised ResNet-32) saved as checkpoint files for
``resnet_checkpoint``. Tests that need more than that (all 10,000 test images, the ImageNet
photos, the akamaster weights themselves, the experiments) skip and say which part of ../shared
they need; the end of the run lists the skips by reason. Where a test's threshold was measured
on the akamaster ResNet-20, ``HAVE_AKAMASTER`` keeps it there.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fcrattack
from fcrattack.data import cifar10, samples, shared_root
from fcrattack.models import create_model, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SHARED = shared_root()
CIFAR_JPEG = SHARED / "data" / "cifar10-jpeg"
IMAGENET_SAMPLES = SHARED / "data" / "imagenet-samples"
AKAMASTER = SHARED / "models" / "cifar10-resnet-akamaster"
#: what each part of ../shared is, for the skip reasons
WHAT = {
    CIFAR_JPEG: "the JPEG CIFAR-10 data set",
    IMAGENET_SAMPLES: "the ImageNet sample photos",
    AKAMASTER: "the pretrained akamaster ResNet weights",
}
HAVE_CIFAR = CIFAR_JPEG.is_dir()
#: whether ``resnet20`` is the akamaster ResNet-20 (else the embedded default model)
HAVE_AKAMASTER = AKAMASTER.is_dir()


def _need(path: Path, why: str = "") -> Path:
    """``path`` (under ../shared) or a skip that names what is missing and why it is needed;
    the shared root itself counts only when it holds ``data/`` and ``models/`` (an empty
    folder stands for a clone without it)."""
    if path == SHARED:
        return need_shared(why or "the shared data sets and models")
    if not path.exists():
        part = next((p for p in WHAT if path == p or p in path.parents), None)
        what = WHAT[part] if part is not None else "the shared data and models"
        where = part if part is not None else SHARED
        pytest.skip(f"needs {what} ({where} not found){': ' + why if why else ''}")
    return path


def need_shared(why: str) -> Path:
    """The shared root, where it holds ``data/`` and ``models/``; else a skip saying ``why``."""
    if not ((SHARED / "data").is_dir() and (SHARED / "models").is_dir()):
        pytest.skip(f"needs the shared data and models (no data/ and models/ in {SHARED}): {why}")
    return SHARED


def akamaster_weights(depth: int) -> Path:
    return next(_need(AKAMASTER).glob(f"resnet{depth}-*.th"))


@pytest.fixture(scope="session")
def resnet_checkpoint(tmp_path_factory):
    """``resnet_checkpoint(depth)``: a CIFAR-10 ResNet-20 or -32 checkpoint file in a third-party
    layout (a bare state_dict under "state_dict", "module." prefixes, no normalisation stored):
    akamaster's from ../shared, else the default model's ResNet-20 weights, or a freshly
    initialised ResNet-32, saved that way."""
    if HAVE_AKAMASTER:
        return akamaster_weights
    folder = tmp_path_factory.mktemp("checkpoints")

    def write(depth: int) -> Path:
        path = folder / f"resnet{depth}.th"
        if not path.exists():
            torch.manual_seed(0)
            net = (
                fcrattack.default_model().model
                if depth == 20
                else create_model(f"resnet{depth}").model
            )
            state = {f"module.{k}": v for k, v in net.state_dict().items()}
            torch.save({"state_dict": state}, path)
        return path

    return write


@pytest.fixture(scope="session")
def resnet20() -> torch.nn.Module:
    """A CIFAR-10 ResNet-20 in eval mode that takes [0, 1] images: the real pretrained one
    (akamaster) from ../shared, else the package's embedded default ResNet-20."""
    if HAVE_AKAMASTER:
        return load_checkpoint(akamaster_weights(20), "resnet20")
    return fcrattack.default_model()


@pytest.fixture(scope="session")
def cifar_test():
    """JPEG CIFAR-10 test images, float [0, 1]: a seeded subset of 200 from ../shared, else
    the 40 bundled samples (4 of each class)."""
    if HAVE_CIFAR:
        return cifar10(CIFAR_JPEG, "test", n=200, seed=0)
    return samples()


@pytest.fixture(scope="session")
def cifar_test_200():
    """The seeded subset of 200 JPEG CIFAR-10 test images, for the tests whose statistics need
    more images than the 40 bundled ones."""
    return cifar10(
        _need(CIFAR_JPEG, "more images than the 40 bundled samples"), "test", n=200, seed=0
    )


@pytest.fixture(scope="session")
def correct_batch(resnet20, cifar_test):
    """(x, y): the first 16 of ``cifar_test`` that ``resnet20`` classifies correctly."""
    with torch.no_grad():
        ok = resnet20(cifar_test.images).argmax(1) == cifar_test.labels
    return cifar_test.images[ok][:16].clone(), cifar_test.labels[ok][:16].clone()


@pytest.fixture(scope="session")
def cifar_jpeg(tmp_path_factory) -> Path:
    """A JPEG CIFAR-10 folder, ``test/<class>/NNNN.jpg``: the real one from ../shared, else the
    40 bundled samples written as JPEG (quality 95) under their source names 0000-0003.jpg."""
    if HAVE_CIFAR:
        return CIFAR_JPEG
    root = tmp_path_factory.mktemp("cifar10-jpeg")
    data = samples()
    for image, label, name in zip(data.images, data.labels, data.ids, strict=True):
        cls = data.classes[int(label)]
        number = Path(name).stem.rsplit("_", 1)[1]
        (root / "test" / cls).mkdir(parents=True, exist_ok=True)
        pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(root / "test" / cls / f"{number}.jpg", quality=95)
    return root


@pytest.fixture(scope="session")
def photos(tmp_path_factory) -> list[Path]:
    """4 photos of different sizes: the first of each of the first 4 ImageNet sample class
    folders from ../shared, else 4 bundled samples enlarged to 4 sizes (JPEG)."""
    if IMAGENET_SAMPLES.is_dir():
        return [next(d.iterdir()) for d in sorted((IMAGENET_SAMPLES / "val").iterdir())[:4]]
    root = tmp_path_factory.mktemp("photos")
    data = samples(4)
    out = []
    for image, name, size in zip(
        data.images, data.ids, [(120, 90), (64, 64), (80, 100), (150, 112)], strict=True
    ):
        pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        path = root / f"{Path(name).stem}.jpg"
        Image.fromarray(pixels).resize(size, Image.BICUBIC).save(path, quality=95)
        out.append(path)
    return out


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """One intra-op thread for the whole suite: the tests run many small batches, where
    OpenMP's spin-waiting between threads on a small (often shared) CPU costs more than it
    gains (measured 1.5-10x slower with 2 threads on the 2-core CI machine under load)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """How many tests skipped and why, grouped by reason (also under ``-q``)."""
    skipped = terminalreporter.stats.get("skipped", [])
    if not skipped:
        return
    reasons: Counter[str] = Counter()
    for report in skipped:
        longrepr = report.longrepr
        text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        # one line per reason: a documentation example's own FILE:LINE prefix is dropped
        reasons[re.sub(r"^(Skipped: )?([\w./-]+\.md:\d+: )?", "", text)] += 1
    ran = sum(len(terminalreporter.stats.get(k, [])) for k in ("passed", "failed", "error"))
    write = terminalreporter.write_line
    terminalreporter.section(f"{len(skipped)} skipped, {ran} ran; skips by reason", sep="-")
    for reason, count in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
        write(f"{count:4d}  {reason}")
