"""Data loaders on the real data in ../shared/data: CIFAR-10 (JPEG folders and the official
python-pickle layout, built here from the real images), ImageNet-style folders, user folders.
Without ../shared, the tests that need a few CIFAR-10 JPEGs read the bundled samples written as
JPEG class folders (conftest's ``cifar_jpeg``); those of the whole data sets skip."""

from __future__ import annotations

import json
import logging
import os
import pickle
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import CIFAR_JPEG, IMAGENET_SAMPLES, _need
from fcrattack.data import (
    CIFAR10_CLASSES,
    Dataset,
    cifar10,
    cifar10_pickle,
    class_folder,
    image_folder,
    imagenet_folder,
    match_classes,
    read_images,
    select,
)
from fcrattack.data.listing import list_flat_folder
from fcrattack.models import imagenet_classes


def _pil(path: Path) -> np.ndarray:
    """Reference decode, independent of fcrattack: (3, H, W) uint8."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()


def _as_uint8(images: torch.Tensor) -> np.ndarray:
    return (images * 255).round().to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def cifar_root() -> Path:
    """The whole JPEG CIFAR-10 data set (both splits, 1,000 images per class and split)."""
    return _need(CIFAR_JPEG)


@pytest.fixture(scope="module")
def few_jpegs(cifar_jpeg: Path) -> Path:
    """A JPEG CIFAR-10 folder with at least 4 test images per class (``test/<class>/000k.jpg``,
    k < 4): the real one, else the bundled samples."""
    return cifar_jpeg


# ---------------------------------------------------------------- CIFAR-10, JPEG folder layout


def test_cifar_jpeg_first_n(cifar_root: Path) -> None:
    ds = cifar10(cifar_root, "test", n=12)
    assert isinstance(ds, Dataset) and len(ds) == 12
    assert ds.images.shape == (12, 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    assert ds.images.min() >= 0.0 and ds.images.max() <= 1.0
    assert ds.images.std() > 0.05  # real pictures, not a constant
    assert (
        ds.classes
        == CIFAR10_CLASSES
        == [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
    )
    # first n = the first files of the first class folder, in file order
    assert ds.ids == [f"airplane/{i:04d}.jpg" for i in range(12)]
    assert ds.labels.tolist() == [0] * 12
    assert ds.skipped == []
    for i in (0, 7):
        np.testing.assert_array_equal(
            _as_uint8(ds.images[i]), _pil(cifar_root / "test" / ds.ids[i])
        )


def test_cifar_jpeg_seeded_subset(cifar_root: Path) -> None:
    a = cifar10(cifar_root, "test", n=60, seed=1)
    b = cifar10(cifar_root, "test", n=60, seed=1)
    c = cifar10(cifar_root, "test", n=60, seed=2)
    first = cifar10(cifar_root, "test", n=60)
    assert a.ids == b.ids and torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.ids != first.ids and a.ids != c.ids
    assert len(set(a.ids)) == 60
    # a random subset of all 10,000 covers several classes, and is kept in the original order
    assert len(set(a.labels.tolist())) >= 5
    order = [(CIFAR10_CLASSES.index(i.split("/")[0]), i) for i in a.ids]
    assert order == sorted(order)
    # label = CIFAR-10 index of the class folder the image came from
    for i, label in zip(a.ids, a.labels.tolist()):
        assert CIFAR10_CLASSES[label] == i.split("/")[0]
    k = 17
    np.testing.assert_array_equal(_as_uint8(a.images[k]), _pil(cifar_root / "test" / a.ids[k]))


def test_cifar_jpeg_train_split_and_root_variants(cifar_root: Path) -> None:
    train = cifar10(cifar_root, "train", n=5, seed=0)
    assert train.images.shape == (5, 3, 32, 32)
    for i, label in zip(train.ids, train.labels.tolist()):
        assert (cifar_root / "train" / i).is_file() and CIFAR10_CLASSES[label] == i.split("/")[0]
    # pointing at the split folder itself works too
    direct = cifar10(cifar_root / "test", n=3)
    assert direct.ids == cifar10(cifar_root, "test", n=3).ids


def test_select_is_deterministic_and_leaves_global_rng_alone() -> None:
    state = torch.get_rng_state()
    s = select(1000, 10, 5)
    assert torch.equal(torch.get_rng_state(), state)
    assert s == select(1000, 10, 5) == sorted(s) and len(set(s)) == 10
    assert s != select(1000, 10, 6)
    assert select(5, 3, None) == [0, 1, 2]
    assert select(5, 9, 1) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="positive"):
        select(5, 0, None)


def test_class_folder_uint8_and_subset(few_jpegs: Path) -> None:
    ds = class_folder(few_jpegs / "test", classes=CIFAR10_CLASSES, n=6, seed=3, uint8=True)
    assert ds.images.dtype == torch.uint8
    f = cifar10(few_jpegs, "test", n=6, seed=3)
    assert torch.equal(ds.images.float() / 255, f.images)
    sub = f.subset([4, 1])
    assert sub.ids == [f.ids[4], f.ids[1]] and torch.equal(sub.images[0], f.images[4])
    assert sub.labels.tolist() == [f.labels[4].item(), f.labels[1].item()]
    mask = f.labels == f.labels[2]
    masked = f.subset(mask)  # a boolean mask selects, it is not read as indices 0/1
    assert masked.ids == [i for i, m in zip(f.ids, mask.tolist()) if m]
    assert torch.equal(masked.images, f.images[mask])
    assert f.subset([]).images.shape == (0, 3, 32, 32)


# ---------------------------------------------------------- CIFAR-10, official pickle layout


class _Py2Pickler(pickle._Pickler):  # type: ignore[misc, name-defined]
    """Writes what Python 2's cPickle (protocol 2) wrote for the official CIFAR-10 release:
    byte strings as BINSTRING opcodes and ``numpy.core.multiarray`` globals."""

    dispatch = pickle._Pickler.dispatch.copy()  # type: ignore[attr-defined]

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes

    def save_global(self, obj: object, name: str | None = None) -> None:
        name = name or obj.__qualname__  # type: ignore[attr-defined]
        module = pickle.whichmodule(obj, name).replace("numpy._core", "numpy.core")
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
        self.memoize(obj)


def _dump(obj: object, path: Path, style: str) -> None:
    with path.open("wb") as f:
        if style == "py2-official":
            _Py2Pickler(f, protocol=2).dump(obj)
        else:  # re-saved with Python 3 at a given protocol
            pickle.dump(obj, f, protocol=int(style.removeprefix("py3-protocol")))


PER_TRAIN_BATCH = 3
N_TEST = 10


def _sources(root: Path, count: int, offset: int) -> list[tuple[Path, int]]:
    """Real JPEG test files, cycling over the classes, no file twice within a split (image
    offset + k is file (offset + k) // 10 of class (offset + k) % 10): (path, label)."""
    out = []
    for k in range(offset, offset + count):
        label = k % 10
        out.append((root / "test" / CIFAR10_CLASSES[label] / f"{k // 10:04d}.jpg", label))
    return out


@pytest.fixture(scope="module", params=["py2-official", "py3-protocol2", "py3-protocol5"])
def pickle_root(
    request: pytest.FixtureRequest, few_jpegs: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict]:
    """A small ``cifar-10-batches-py/`` built from real JPEG images, laid out like the
    official release; returns (parent folder, {split: [(path, label), ...]})."""
    root = tmp_path_factory.mktemp(f"cifar-{request.param}")
    batches = root / "cifar-10-batches-py"
    batches.mkdir()
    sources: dict[str, list[tuple[Path, int]]] = {"train": [], "test": []}
    files = [(f"data_batch_{i + 1}", "train", i * PER_TRAIN_BATCH) for i in range(5)]
    files.append(("test_batch", "test", 0))
    for name, split, offset in files:
        src = _sources(few_jpegs, PER_TRAIN_BATCH if split == "train" else N_TEST, offset)
        sources[split] += src
        data = np.stack([_pil(p).reshape(-1) for p, _ in src])  # (n, 3072): R, G, B planes
        assert data.dtype == np.uint8 and data.shape == (len(src), 3072)
        batch = {
            b"batch_label": f"{name} of 6".encode(),
            b"labels": [lab for _, lab in src],
            b"data": data,
            b"filenames": [p.name.encode() for p, _ in src],
        }
        _dump(batch, batches / name, request.param)
    (batches / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": [c.encode() for c in CIFAR10_CLASSES]}, protocol=2)
    )
    if request.param == "py2-official":
        raw = (batches / "test_batch").read_bytes()
        assert raw.startswith(b"\x80\x02") and b"cnumpy.core.multiarray\n_reconstruct\n" in raw
        assert b"U\x06labels" in raw  # a Python 2 str key, as in the official files
    return root, sources


@pytest.mark.parametrize("split", ["test", "train"])
def test_cifar_pickle_matches_source_images(pickle_root: tuple[Path, dict], split: str) -> None:
    root, sources = pickle_root
    ds = cifar10(root, split)
    src = sources[split]
    assert ds.images.shape == (len(src), 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.labels.dtype == torch.int64
    assert ds.labels.tolist() == [lab for _, lab in src]
    assert ds.classes == CIFAR10_CLASSES
    assert ds.ids == [f"{split}/{i}" for i in range(len(src))]
    expected = np.stack([_pil(p) for p, _ in src])
    np.testing.assert_array_equal(_as_uint8(ds.images), expected)
    assert torch.allclose(ds.images, torch.from_numpy(expected).float() / 255, atol=0)


def test_cifar_pickle_selection_and_root_forms(pickle_root: tuple[Path, dict]) -> None:
    root, sources = pickle_root
    full = cifar10(root, "test")
    first = cifar10(root / "cifar-10-batches-py", "test", n=4)
    assert first.ids == ["test/0", "test/1", "test/2", "test/3"]
    assert torch.equal(first.images, full.images[:4])
    seeded = cifar10_pickle(root, "test", n=4, seed=0)
    again = cifar10_pickle(root, "test", n=4, seed=0)
    assert seeded.ids == again.ids and seeded.ids != first.ids
    idx = [int(i.split("/")[1]) for i in seeded.ids]
    assert torch.equal(seeded.images, full.images[idx])
    assert torch.equal(seeded.labels, full.labels[idx])
    with pytest.raises(ValueError, match="split"):
        cifar10(root, "validation")


class _Exploit:
    """Unpickling this would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


def test_cifar_pickle_refuses_code(tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    marker = tmp_path / "pwned"
    data = np.zeros((2, 3072), np.uint8)
    with (batches / "test_batch").open("wb") as f:
        pickle.dump({b"data": data, b"labels": [0, 1], b"x": _Exploit(marker)}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load .*system") as exc:
        cifar10(tmp_path, "test")
    assert "test_batch" in str(exc.value)
    assert not marker.exists()
    # a bare reference to os.system is refused as well
    with (batches / "test_batch").open("wb") as f:
        pickle.dump({b"data": data, b"labels": os.system}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        cifar10_pickle(tmp_path, "test")


def test_cifar_pickle_bad_batches(tmp_path: Path) -> None:
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    (batches / "test_batch").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    with pytest.raises(ValueError, match="not a CIFAR-10 batch"):
        cifar10(tmp_path, "test")
    (batches / "test_batch").write_bytes(
        pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, protocol=2)
    )
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        cifar10(tmp_path, "test")
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        cifar10(tmp_path, "train")


# ---------------------------------------------------------------- ImageNet-style folders


@pytest.fixture(scope="module")
def imagenet_root() -> Path:
    return _need(IMAGENET_SAMPLES)


def test_imagenet_folder_first_8(imagenet_root: Path) -> None:
    ds = imagenet_folder(imagenet_root, n=8)
    wnids = sorted(p.name for p in (imagenet_root / "val").iterdir() if p.is_dir())
    meta = json.loads((imagenet_root / "classes.json").read_text())
    assert len(wnids) == 1000 and len(ds.classes) == 1000
    assert ds.images.shape == (8, 3, 224, 224) and ds.images.dtype == torch.float32
    assert ds.images.min() >= 0.0 and ds.images.max() <= 1.0 and ds.images.std() > 0.05
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == list(range(8))
    assert ds.ids[0] == "n01440764/n01440764_tench.JPEG"
    assert ds.classes[0] == "tench" and ds.classes[999] == "toilet tissue"
    assert ds.classes == [c["name"] for c in sorted(meta, key=lambda c: c["index"])]
    for i, label in zip(ds.ids, ds.labels.tolist()):
        assert wnids[label] == i.split("/")[0]

    # reference: shorter side to 256 (bilinear), centre 224 crop, done by hand with PIL
    with Image.open(imagenet_root / "val" / ds.ids[3]) as img:
        img = img.convert("RGB")
        w, h = img.size
        s = 256 / min(w, h)
        img = img.resize((round(w * s), round(h * s)), Image.BILINEAR)
        left, top = (img.size[0] - 224) // 2, (img.size[1] - 224) // 2
        ref = np.asarray(img.crop((left, top, left + 224, top + 224))).transpose(2, 0, 1)
    np.testing.assert_array_equal(_as_uint8(ds.images[3]), ref)


def test_imagenet_folder_seeded_labels(imagenet_root: Path) -> None:
    ds = imagenet_folder(imagenet_root / "val", n=8, seed=4)
    meta = {c["wnid"]: c for c in json.loads((imagenet_root / "classes.json").read_text())}
    assert ds.labels.tolist() != list(range(8))
    for i, label in zip(ds.ids, ds.labels.tolist()):
        wnid = i.split("/")[0]
        assert meta[wnid]["index"] == label and ds.classes[label] == meta[wnid]["name"]
    assert imagenet_folder(imagenet_root, n=8, seed=4).ids == ds.ids


# ---------------------------------------------------------------- user folders and errors


def _copy_as_png(src: list[Path], dst: Path) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    out = []
    for k, p in enumerate(src):
        with Image.open(p) as img:
            q = dst / f"img{k}.png"
            img.convert("RGB").save(q)
        out.append(q)
    return out


def test_image_folder_user_pngs(few_jpegs: Path, tmp_path: Path) -> None:
    src = [few_jpegs / "test" / c / "0003.jpg" for c in ("cat", "ship", "frog")]
    pngs = _copy_as_png(src, tmp_path / "mine")
    (tmp_path / "mine" / "notes.txt").write_text("not an image")
    ds = image_folder(tmp_path / "mine")
    assert ds.ids == ["img0.png", "img1.png", "img2.png"]
    assert ds.images.shape == (3, 3, 32, 32) and ds.images.dtype == torch.float32
    assert ds.labels.tolist() == [-1, -1, -1] and ds.labels.dtype == torch.int64
    np.testing.assert_array_equal(_as_uint8(ds.images), np.stack([_pil(p) for p in src]))
    np.testing.assert_array_equal(_as_uint8(ds.images), np.stack([_pil(p) for p in pngs]))
    (tmp_path / "labels.csv").write_text("file,label\nimg0.png,cat\nimg1.png,8\nimg2.png,Frog\n")
    labelled = image_folder(
        tmp_path / "mine", labels=tmp_path / "labels.csv", classes=CIFAR10_CLASSES
    )
    assert labelled.labels.tolist() == [3, 8, 6]
    assert image_folder(tmp_path / "mine", n=2).ids == ["img0.png", "img1.png"]


def test_image_folder_different_sizes_need_transform(photos: list[Path], tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for k, photo in enumerate(photos[:2]):
        shutil.copy(photo, folder / f"{k}.jpg")
    with Image.open(folder / "0.jpg") as a, Image.open(folder / "1.jpg") as b:
        sizes_differ = a.size != b.size
    if sizes_differ:
        with pytest.raises(ValueError, match="different sizes"):
            image_folder(folder)
    ds = image_folder(folder, transform=lambda im: im.resize((40, 30)))
    assert ds.images.shape == (2, 3, 30, 40)


def test_corrupt_file_skipped_with_warning(
    few_jpegs: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cifar_root = few_jpegs
    folder = tmp_path / "user"
    _copy_as_png([cifar_root / "test" / "dog" / "0000.jpg"], folder)
    (folder / "x.jpg").write_bytes(b"\x00garbage, not a JPEG\xff" * 20)
    with caplog.at_level(logging.WARNING, logger="fcrattack"):
        ds = image_folder(folder)
    assert ds.ids == ["img0.png"] and len(ds) == 1
    assert [Path(s).name for s in ds.skipped] == ["x.jpg"]
    assert any("x.jpg" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    # the same in a class-folder layout: the label of the good image is kept
    root = tmp_path / "classes"
    _copy_as_png([cifar_root / "test" / "cat" / "0000.jpg"], root / "cat")
    _copy_as_png([cifar_root / "test" / "dog" / "0001.jpg"], root / "dog")
    (root / "cat" / "x.jpg").write_bytes(b"garbage" * 50)
    ds = class_folder(root)
    assert ds.classes == ["cat", "dog"] and ds.labels.tolist() == [0, 1]
    assert ds.ids == ["cat/img0.png", "dog/img0.png"]
    assert [Path(s).name for s in ds.skipped] == ["x.jpg"]


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        image_folder(empty)
    with pytest.raises(ValueError, match="no class folders"):
        class_folder(empty)
    (empty / "cat").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        class_folder(empty)
    with pytest.raises(FileNotFoundError, match="not found"):
        image_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="not found"):
        class_folder(tmp_path / "missing")
    with pytest.raises(FileNotFoundError):
        cifar10(tmp_path / "missing", "test")
    with pytest.raises(FileNotFoundError, match="class folder missing"):
        cifar10(empty, "test")  # has 'cat' but not 'airplane'
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.jpg").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="none of the 1 image files could be read"):
        image_folder(only_bad)


def test_sixteen_bit_and_rotated_images_decode_as_they_look(
    few_jpegs: Path, tmp_path: Path
) -> None:
    """Regression: 16-bit greyscale PNGs were clipped to white and EXIF-rotated JPEGs were
    read sideways."""
    with Image.open(few_jpegs / "test" / "cat" / "0000.jpg") as img:
        rgb = np.asarray(img.convert("RGB"))
    grey = np.asarray(Image.fromarray(rgb).convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(tmp_path / "deep.png")  # mode I;16
    rotated = Image.fromarray(rgb).rotate(-90, expand=True)  # stored sideways ...
    exif = Image.Exif()
    exif[0x0112] = 8  # ... with the orientation tag that turns it back upright
    rotated.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    images, kept, _ = read_images([tmp_path / "deep.png", tmp_path / "phone.jpg"])
    assert kept == [0, 1]
    deep = images[0, 0].numpy().astype(int)
    assert np.abs(deep - grey // 257).max() <= 1  # not clipped to white
    upright = images[1].permute(1, 2, 0).numpy().astype(int)
    assert np.abs(upright - rgb.astype(int)).mean() < 8  # JPEG noise only


def test_float_images_with_nan_or_inf_are_unreadable_not_black(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: a float TIFF holding one inf was read almost all black, one holding NaN
    as values 0 or 1 of 255, and both were attacked; they are now skipped, named."""
    gen = np.random.default_rng(0)
    for name, bad in (("inf.tif", np.inf), ("nan.tif", np.nan), ("ok.tif", 0.5)):
        a = gen.random((8, 8), dtype=np.float32)
        a[2, 2] = bad
        Image.fromarray(a).save(tmp_path / name)
    with caplog.at_level(logging.WARNING, logger="fcrattack"):
        images, kept, _ = read_images([tmp_path / n for n in ("inf.tif", "nan.tif", "ok.tif")])
    assert kept == [2] and images.float().mean() > 50  # the finite one, scaled from [0, 1]
    assert "inf.tif: 1 of its 64 values are NaN or inf" in caplog.text
    assert "nan.tif: 1 of its 64 values are NaN or inf" in caplog.text


def test_decompression_bomb_is_skipped_with_a_warning(
    few_jpegs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Regression: an image over Pillow's pixel limit (a decompression bomb) is skipped with
    a warning; the other images are read."""
    for name in ("0000", "0001"):
        shutil.copy(few_jpegs / "test" / "cat" / f"{name}.jpg", tmp_path / f"{name}.jpg")
    Image.new("RGB", (200, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 2000)  # 200 x 200 > 2 x 2000: a "bomb"
    with caplog.at_level(logging.WARNING, logger="fcrattack"):
        data = list_flat_folder(tmp_path, labels="pred").read()
    assert data.ids == ["0000.jpg", "0001.jpg"] and [Path(s).name for s in data.skipped] == [
        "big.png"
    ]


def test_label_files_with_a_byte_order_mark_and_folders_in_keys(
    few_jpegs: Path, tmp_path: Path
) -> None:
    """Regression: a label file saved with a byte order mark (as spreadsheet programs write
    CSV), and a folder in a key, are read."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("0000", "0001"):
        shutil.copy(few_jpegs / "test" / "dog" / f"{name}.jpg", photos / f"{name}.jpg")
    (tmp_path / "labels.csv").write_text(
        "file,label\nphotos/0000.jpg,dog\n0001.jpg,5\n", encoding="utf-8-sig"
    )
    listing = list_flat_folder(
        photos, labels=tmp_path / "labels.csv", classes=["cat", "x", "y", "z", "w", "dog"]
    )
    assert listing.labels == [5, 5]


def test_exact_class_name_wins_over_a_normalised_twin() -> None:
    """Regression: a name that is one class exactly and another after normalisation (ImageNet
    has "Cardigan" and "cardigan") is matched exactly first; only a name with no exact match
    and two normalised ones is refused."""
    names = imagenet_classes()[1]
    assert match_classes(["Cardigan", "cardigan"], names) == [264, 474]
    with pytest.raises(ValueError, match="names 2 of the model's classes"):
        match_classes(["CARDIGAN"], names)
