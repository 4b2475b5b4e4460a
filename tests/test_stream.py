"""Streaming attacks over image files: the bounded prefetching reader
(:class:`fcrattack.data.ImageStream`) and :func:`fcrattack.app.attack_dataset.attack_dataset` on an
:class:`~fcrattack.data.ImageList`: order and content, clean shutdown, bounded memory, resume,
predicted labels, targets, the low-accuracy warning and the refusal of other settings. Real
CIFAR-10 and ImageNet JPEGs from ../shared (copied or re-encoded where a test needs its own
folder); without ../shared, the bundled samples as JPEG files (conftest's ``cifar_jpeg`` and
``photos``)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
import torch
from PIL import Image

from conftest import CIFAR_JPEG, _need
from fcrattack import FcrattackWarning, build, default_model
from fcrattack.app.attack_dataset import attack_dataset
from fcrattack.app.cam_maps import write_cams
from fcrattack.app.labels import accuracy_checked, batch_labels, low_accuracy
from fcrattack.attacks import FCR, FGSM
from fcrattack.base.store import dumps
from fcrattack.data import (
    CIFAR10_CLASSES,
    PREDICTED,
    ImageList,
    ImageStream,
    list_class_folders,
    list_flat_folder,
)
from fcrattack.metrics import summarize_records


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    return default_model()


@pytest.fixture(scope="module")
def cifar(cifar_jpeg: Path) -> ImageList:
    """40 real CIFAR-10 test JPEGs (a seeded subset over all classes), labelled by folder."""
    return list_class_folders(cifar_jpeg / "test", classes=CIFAR10_CLASSES).select(40, 0)


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _reader_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("fcrattack-")]


# the reader ------------------------------------------------------------------------------------
def test_stream_equals_read_in_order_with_a_corrupt_file(cifar, tmp_path):
    for p, i in zip(cifar.paths[:30], cifar.ids[:30]):
        (tmp_path / i).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, tmp_path / i)
    (tmp_path / "cat" / "broken.jpg").write_bytes(b"not a jpeg")
    images = list_class_folders(tmp_path, classes=CIFAR10_CLASSES)
    whole = images.read()
    with ImageStream(images, 7, prefetch=2, workers=3) as stream:
        parts = list(stream)
    assert len(parts) == len(stream) == 5 and sum(len(p) for p in parts) == len(whole) == 30
    assert torch.equal(torch.cat([p.images for p in parts]), whole.images)
    assert torch.equal(torch.cat([p.labels for p in parts]), whole.labels)
    assert [i for p in parts for i in p.ids] == whole.ids
    assert (
        [s for p in parts for s in p.skipped]
        == whole.skipped
        == [str(tmp_path / "cat" / "broken.jpg")]
    )
    assert not _reader_threads()


def test_early_stop_and_errors_leave_no_thread(cifar):
    with ImageStream(cifar, 4, prefetch=2, workers=2) as stream:
        next(stream)
    assert not _reader_threads()
    with pytest.raises(RuntimeError, match="consumer"), ImageStream(cifar, 4) as stream:
        for _ in stream:
            raise RuntimeError("the consumer failed")
    assert not _reader_threads()
    for _ in ImageStream(cifar, 16):  # exhaustion alone closes it
        pass
    assert not _reader_threads()


def test_reader_decodes_at_most_prefetch_batches_ahead(cifar):
    decoded = []

    def counting(img: Image.Image) -> Image.Image:
        decoded.append(1)
        return img

    with ImageStream(dataclasses.replace(cifar, transform=counting), 4, prefetch=2) as stream:
        next(stream)
        time.sleep(0.5)  # plenty of time to decode everything if nothing held it back
        assert len(decoded) == 3 * 4  # the batch held and the two ahead
    assert not _reader_threads()


def test_mixed_sizes_across_batches_are_a_clear_error(photos, tmp_path):
    for photo in photos:
        (tmp_path / "val" / photo.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(photo, tmp_path / "val" / photo.parent.name)
    photos = list_class_folders(tmp_path / "val").select(4, None)
    sizes = r"different sizes.*--size N.*resize_center_crop"
    with pytest.raises(ValueError, match=sizes), ImageStream(photos, 1) as stream:
        list(stream)
    assert not _reader_threads()


# memory --------------------------------------------------------------------------------------
MEMORY_CHILD = r"""
import json, resource, sys
import torch
torch.set_num_threads(1)
from torch import nn
from fcrattack import build
from fcrattack.app.attack_dataset import attack_dataset
from fcrattack.data import CIFAR10_CLASSES, list_class_folders

root, out = sys.argv[1], sys.argv[2]
torch.manual_seed(0)
model = nn.Sequential(nn.AvgPool2d(16), nn.Flatten(), nn.Linear(192, 10))  # cheap on 128 px
attack = build("fgsm", model)
images = list_class_folders(root, classes=CIFAR10_CLASSES)
peak = {"start": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
for n in map(int, sys.argv[3:]):
    attack_dataset(attack, images.select(n, 0), f"{out}/{n}", batch_size=16, page=4,
                   quiet=True, workers=2)
    peak[n] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(peak))
"""


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """3,000 real CIFAR-10 test JPEGs (300 per class) re-encoded at 128 x 128 px."""
    src = _need(CIFAR_JPEG / "test", "3,000 images")
    root = tmp_path_factory.mktemp("big")
    for cls in sorted(p for p in src.iterdir() if p.is_dir()):
        (root / cls.name).mkdir()
        for f in sorted(cls.iterdir())[:300]:
            with Image.open(f) as im:
                big = im.convert("RGB").resize((128, 128), Image.Resampling.BICUBIC)
                big.save(root / cls.name / f.name, quality=90)
    return root


def test_memory_does_not_grow_with_the_number_of_images(big_folder, tmp_path):
    """Peak RSS of one process that attacks (FGSM, batches of 16) 200 and then 3,000 images
    of a folder of 128 px JPEGs: the second, 15 times larger run must raise the peak by well
    under what holding its extra 2,800 images would cost (2,800 x 3 x 128 x 128 float32 =
    525 MiB); the bound is 60 MiB. Measured on the 2-core CPU with 1,000 images: the process
    holds 262 MiB after imports, 338-344 MiB at the peak of the 200-image run, and the larger
    run raised the peak by 4 to 22 MiB over five runs (the allocator's noise, plus about 2 KiB
    of records per image); holding every adversarial image instead (a deliberate leak) raised
    it by 274 MiB."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, str(big_folder), str(tmp_path), "200", "3000"],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    peak = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = peak["3000"] - peak["200"]
    assert growth < 60, peak
    assert peak["3000"] - peak["start"] < 2048, peak
    assert len(_rows(tmp_path / "3000")) == 3000


# resume --------------------------------------------------------------------------------------
class Interrupted(FCR):
    """FCR that fails in its ``fail_at``-th call (a crash in the middle of a run) and counts
    the images it attacks."""

    fail_at = 0
    seen: list[str] = []

    def run(self, x, y, **kw):
        Interrupted.seen += list(kw["ids"])
        if len(Interrupted.seen) > self.fail_at > 0:
            raise RuntimeError("interrupted")
        return super().run(x, y, **kw)


def test_resume_after_an_interruption_equals_an_uninterrupted_run(model, cifar, tmp_path, caplog):
    data = cifar.select(24, None)
    common = dict(batch_size=8, page=10, quiet=True)
    ref = attack_dataset(FCR(model, steps=2), data, tmp_path / "ref", **common)
    Interrupted.seen, Interrupted.fail_at = [], 20  # fails inside the third batch
    with pytest.raises(RuntimeError, match="interrupted"):
        attack_dataset(Interrupted(model, steps=2), data, tmp_path / "run", **common)
    assert [r["id"] for r in _rows(tmp_path / "run")] == data.ids[:16]  # finished batches kept
    assert not (tmp_path / "run" / "summary.json").exists()
    Interrupted.seen, Interrupted.fail_at = [], 0
    with caplog.at_level(logging.INFO, logger="fcrattack"):
        summary = attack_dataset(Interrupted(model, steps=2), data, tmp_path / "run", **common)
    assert "resuming the run" in caplog.text and "clean accuracy" not in caplog.text
    assert Interrupted.seen == data.ids[16:]  # nothing attacked twice
    assert _rows(tmp_path / "run") == _rows(tmp_path / "ref")
    assert summary == ref
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert (
        saved["summary"] == json.loads((tmp_path / "ref" / "summary.json").read_text())["summary"]
    )
    assert saved["resumed_after"] == 16
    page = (tmp_path / "run" / "index.html").read_text()
    assert "the first 10 attacked" in page
    assert len(list((tmp_path / "run" / "img").rglob("clean.png"))) == 10
    assert len(list((tmp_path / "run" / "cam").rglob("*.png"))) == 24


KILL_CHILD = r"""
import sys, time
import torch
torch.set_num_threads(1)
from fcrattack import default_model
from fcrattack.app.attack_dataset import attack_dataset
from fcrattack.attacks import FGSM
from fcrattack.data import CIFAR10_CLASSES, list_class_folders

class Paced(FGSM):  # a few batches a second, so that the kill lands mid-run
    def run(self, x, y, **kw):
        time.sleep(0.1)
        return super().run(x, y, **kw)

data = list_class_folders(sys.argv[1], classes=CIFAR10_CLASSES).select(40, 0)
attack_dataset(Paced(default_model()), data, sys.argv[2], batch_size=4, page=6, quiet=True)
"""


class Counting(FGSM):
    """FGSM that records the ids of the images it attacks."""

    seen: list[str] = []

    def run(self, x, y, **kw):
        Counting.seen += list(kw["ids"])
        return super().run(x, y, **kw)


def test_sigkill_then_resume(model, cifar, cifar_jpeg, tmp_path):
    """A real ``kill -9`` of a streaming run once it has written some records (a batch's PNGs
    may be half written, a line partial), then a rerun: it attacks exactly the images without
    a record, and the records equal an uninterrupted run's."""
    out, path = tmp_path / "run", tmp_path / "run" / "results.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-c", KILL_CHILD, str(cifar_jpeg / "test"), str(out)]
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while not (path.is_file() and path.read_bytes().count(b"\n") >= 12):
            assert proc.poll() is None and time.monotonic() < deadline, "child ended or stalled"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done = [json.loads(line)["id"] for line in path.read_bytes().split(b"\n")[:-1]]
    assert 12 <= len(done) < 40 and not (out / "summary.json").exists()
    Counting.seen = []
    common = dict(batch_size=4, page=6, quiet=True)
    summary = attack_dataset(Counting(model), cifar, out, **common)
    assert sorted(Counting.seen) == sorted(set(cifar.ids) - set(done))
    assert summary == attack_dataset(FGSM(model), cifar, tmp_path / "ref", **common)
    rows, ref = _rows(out), _rows(tmp_path / "ref")
    assert [r["id"] for r in rows] == cifar.ids
    for a, b in zip(rows, ref):
        assert a.keys() == b.keys()
        for k, v in a.items():
            assert b[k] == (pytest.approx(v, abs=1e-6) if isinstance(v, float) else v), k
    assert all((out / r["adv_png"]).is_file() for r in rows)


def test_other_settings_are_refused_and_a_finished_run_is_left_as_it_is(model, cifar, tmp_path):
    data = cifar.select(8, None)
    out = tmp_path / "run"
    first = attack_dataset(build("fgsm", model), data, out, batch_size=8, page=0, quiet=True)
    with pytest.raises(ValueError, match=r"different settings \(options.eps: 0\.03"):
        attack_dataset(build("fgsm", model, eps=0.01), data, out, quiet=True)
    with pytest.raises(ValueError, match=r"data.n_images: 8 -> 6"):
        attack_dataset(build("fgsm", model), data.select(6, None), out, quiet=True)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert attack_dataset(build("fgsm", model), data, out, quiet=True) == first
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    summary = attack_dataset(
        build("fgsm", model, eps=0.01), data, out, page=0, overwrite=True, quiet=True
    )
    assert summary is not None and json.loads((out / "run.json").read_text())["options"]["eps"]


# labels and targets ----------------------------------------------------------------------------
def test_unlabelled_folder_is_attacked_as_the_models_prediction(model, cifar, tmp_path, caplog):
    flat = tmp_path / "flat"
    flat.mkdir()
    for p in cifar.paths[:12]:
        shutil.copy(p, flat / f"{p.parent.name}_{p.name}")
    images = list_flat_folder(flat, labels="pred", classes=CIFAR10_CLASSES)
    assert set(images.labels) == {PREDICTED}
    with caplog.at_level(logging.WARNING, logger="fcrattack"):
        summary = attack_dataset(build("fgsm", model), images, tmp_path / "out", quiet=True)
    rows = _rows(tmp_path / "out")
    assert [r["id"] for r in rows] == images.ids
    assert all(r["label_source"] == "predicted" and r["clean_correct"] for r in rows)
    with torch.no_grad():
        pred = model(images.read().images).argmax(1).tolist()
    assert [r["label"] for r in rows] == pred
    assert summary is not None and summary["n"] == 12 and "clean accuracy" not in caplog.text
    layer, area, _, _ = write_cams(model, images, tmp_path / "cams", batch_size=5, quiet=True)
    assert layer == "model.layer3" and 0 < area < 1
    assert len(list((tmp_path / "cams" / "mask").glob("*.png"))) == 12


def test_target_rules_are_batch_independent_and_leave_the_global_rng_alone(model, cifar):
    data = cifar.select(20, None).read()
    ids, x, y = data.ids, data.images, data.labels
    rng = torch.get_rng_state()
    whole = batch_labels(model, x, y, ids, "random", 3)
    halves = [
        batch_labels(model, x[s], y[s], ids[s], "random", 3) for s in (slice(0, 7), slice(7, 20))
    ]
    assert torch.equal(whole.target, torch.cat([h.target for h in halves]))
    assert (whole.target != y).all() and len(set(whole.target.tolist())) > 3
    assert not torch.equal(whole.target, batch_labels(model, x, y, ids, "random", 4).target)
    assert torch.equal(torch.get_rng_state(), rng)
    least = batch_labels(model, x, y, ids, "least-likely", 0)
    with torch.no_grad():
        logits = model(x)
    logits[torch.arange(20), y] = float("inf")
    assert torch.equal(least.target, logits.argmin(1)) and least.attack.all()
    fixed = batch_labels(model, x, y, ids, 3, 0)
    assert (fixed.target == 3).all() and torch.equal(fixed.attack, y != 3)


def test_targeted_attacks_of_a_folder(model, cifar, tmp_path):
    data = cifar.select(20, None)
    n3 = data.labels.count(3)
    assert 0 < n3 < 20
    pgd = build("pgd", model, targeted=True, steps=2)
    summary = attack_dataset(pgd, data, tmp_path / "fixed", target=3, batch_size=8, quiet=True)
    rows = _rows(tmp_path / "fixed")
    assert [r["id"] for r in rows] == data.ids
    skipped = [r for r in rows if "skipped" in r]
    assert [r["label"] for r in skipped] == [3] * n3
    assert all(r["target"] == 3 for r in rows)
    assert summary is not None and summary["n_images"] == summary["n"] == 20 - n3
    saved = json.loads((tmp_path / "fixed" / "summary.json").read_text())
    assert saved["not_attacked"] == {"label equals the target class": n3}
    assert saved["target"] == 3 and saved["n_attacked"] == 20 - n3
    targets = []
    for b in (5, 20):
        attack_dataset(pgd, data, tmp_path / f"r{b}", target="random", batch_size=b, quiet=True)
        targets.append([r["target"] for r in _rows(tmp_path / f"r{b}")])
    assert targets[0] == targets[1]
    with pytest.raises(ValueError, match="built untargeted"):
        attack_dataset(build("pgd", model), data, tmp_path / "x", target="random")
    with pytest.raises(ValueError, match="targeted=True: give a target"):
        attack_dataset(pgd, data, tmp_path / "x")


def _warned(call) -> str:
    """The ``FcrattackWarning`` messages that ``call()`` issues, one per line."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FcrattackWarning)
        call()
    return "\n".join(str(w.message) for w in caught if w.category is FcrattackWarning)


def test_low_clean_accuracy_warns_with_the_reason(model, cifar, tmp_path):
    # every label moved by 5 classes: no image of the first 16 is predicted as its moved label
    wrong = dataclasses.replace(cifar, labels=[(k + 5) % 10 for k in cifar.labels])
    few = wrong.select(4, None)
    text = _warned(lambda: attack_dataset(build("fgsm", model), few, tmp_path / "f", quiet=True))
    assert "clean accuracy" not in text  # 0 of 4 tells too little
    text = _warned(  # batches of 8: judged on the first 16 images
        lambda: attack_dataset(
            build("fgsm", model), wrong, tmp_path / "o", batch_size=8, quiet=True
        )
    )
    assert text.count("clean accuracy on the first 16 labelled images is 0 %") == 1
    assert "class-folder names" in text and "--size" in text


class _Constant(torch.nn.Module):
    """Always the same logits, favouring class 3 (a collapsed model)."""

    def __init__(self) -> None:
        super().__init__()
        self.bias = torch.nn.Parameter(torch.arange(10.0) == 3, requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bias.float().expand(x.shape[0], 10) + 0 * x.mean((1, 2, 3))[:, None]


def _given(labels: list[int], preds: list[int]) -> list[dict]:
    return [
        {"label": y, "pred_clean": p, "clean_correct": y == p, "success": False}
        | {"label_source": "given"}
        for y, p in zip(labels, preds, strict=True)
    ]


def test_low_accuracy_is_judged_against_chance(cifar, tmp_path):
    assert low_accuracy(10) == pytest.approx(0.2) and low_accuracy(1000) == pytest.approx(0.2)
    assert low_accuracy(5) == pytest.approx(0.4) and low_accuracy(2) == pytest.approx(0.75)
    labels = [i % 5 for i in range(20)]
    at_chance = _given(labels, [y if i < 4 else (y + 1) % 5 for i, y in enumerate(labels)])
    # 4 of 20 on 5 classes: exactly chance
    assert "is 20 % (4 correct; chance is about 20 %)" in _warned(
        lambda: accuracy_checked(at_chance)
    )
    good = _given(labels, labels)
    assert _warned(lambda: accuracy_checked(good)) == ""
    # a constant model on images half of which are labelled as its class: 50 %, still warned
    # (the model ignores the pixels: any 16 images, 8 of them labelled 3)
    labels = [3] * 8 + [0, 1, 2, 4, 5, 6, 7, 8]
    data = dataclasses.replace(cifar.select(16, None), labels=labels)
    text = _warned(
        lambda: attack_dataset(build("fgsm", _Constant()), data, tmp_path / "const", quiet=True)
    )
    assert "is 50 % (8 correct, class 3 predicted for every image" in text


def test_summary_of_stored_records_equals_the_results_summary(model, cifar):
    data = cifar.select(16, None).read()
    result = FCR(model, steps=3).run(data.images, data.labels, ids=data.ids)
    assert result.mask is not None
    rows = json.loads(dumps(result.records()))  # as stored: non-finite numbers are null
    assert [r["mask_fraction"] for r in rows] == pytest.approx(
        result.mask.flatten(1).mean(1).tolist()
    )
    ours, theirs = summarize_records(rows), result.summary()
    assert ours.keys() == theirs.keys()
    for k, v in theirs.items():
        assert ours[k] == pytest.approx(v, rel=1e-6, nan_ok=True), k
