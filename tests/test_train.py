"""``fcrattack train`` and :func:`fcrattack.models.train.train` on the bundled samples: settings
checked like attack options, resume only with the same settings, a diverging run stopped with
its last good checkpoint, and quiet runs without progress bars."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest
import torch

import fcrattack.models.train as training
from fcrattack.cli import main
from fcrattack.data import CIFAR10_CLASSES, samples
from fcrattack.models import load_model
from fcrattack.models.exported import EXPORT_MARK
from fcrattack.models.train import TrainConfig, TrainingDiverged, export_weights, train
from fcrattack.viz import save_png


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 training and 10 test images of the bundled samples as CIFAR-10 class folders."""
    root = tmp_path_factory.mktemp("cifar")
    data = samples()
    for i, (image_id, x, y) in enumerate(zip(data.ids, data.images, data.labels, strict=True)):
        split = "train" if i < 30 else "test"  # round-robin order: every class in both
        save_png(x, root / split / CIFAR10_CLASSES[int(y)] / image_id)
    return root


def _argv(root: Path, out: Path, *extra: str) -> list[str]:
    return ["-q", "--threads", "1", "train", "--data", str(root), "--out", str(out), *extra]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fcrattack: error: "), err
    return err[0]


def test_quiet_training_shows_no_progress_bars(
    cifar_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(_argv(cifar_root, tmp_path / "run", "--epochs", "1", "--batch-size", "16")) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no tqdm bar, no log below WARNING
    assert "checkpoint:" in captured.out


@pytest.mark.parametrize(
    ("flag", "value", "shown"),
    [
        ("--lr", "0.5", "lr 0.1 -> 0.5"),
        ("--batch-size", "8", "batch_size 16 -> 8"),
        ("--seed", "3", "seed 0 -> 3"),
        ("--epochs", "3", "epochs 1 -> 3"),
        ("--arch", "vgg11", "arch 'resnet20' -> 'vgg11'"),
    ],
)
def test_resume_with_other_settings_is_refused_naming_them(
    cifar_root: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    shown: str,
) -> None:
    out = tmp_path / "run"
    base = ["--epochs", "1", "--batch-size", "16"]
    assert main(_argv(cifar_root, out, *base)) == 0
    before = (out / "last.pt").read_bytes()
    capsys.readouterr()
    changed = [*base]
    if flag in changed:
        changed[changed.index(flag) + 1] = value
    else:
        changed += [flag, value]
    assert main(_argv(cifar_root, out, *changed)) == 2
    line = _one_line_error(capsys)
    assert shown in line and "another --out" in line
    assert (out / "last.pt").read_bytes() == before  # the checkpoint still says what was used
    assert main(_argv(cifar_root, out, *base)) == 0  # the same settings still resume


def test_resume_on_other_images_of_the_same_number_is_refused(
    cifar_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: a run resumed on another training set of the same size (here: one image's
    pixels changed) went on silently; only the number of images was compared."""
    out = tmp_path / "run"
    base = ["--epochs", "1", "--batch-size", "16"]
    assert main(_argv(cifar_root, out, *base)) == 0
    other = tmp_path / "other"
    shutil.copytree(cifar_root, other)
    first = sorted((other / "train").rglob("*.png"))[3]
    save_png(1 - samples(1).images[0], first)
    capsys.readouterr()
    assert main(_argv(other, out, *base)) == 2
    line = _one_line_error(capsys)
    assert "train_data" in line and "train_images" not in line, line


def test_last_pt_that_is_no_training_checkpoint_is_a_one_line_error(
    cifar_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    torch.save(load_model("default").state_dict(), out / "last.pt")
    assert main(_argv(cifar_root, out, "--epochs", "1")) == 2
    assert "not a checkpoint of fcrattack train" in _one_line_error(capsys)


def test_a_run_of_four_steps_trains(
    cifar_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: 4 steps in all (30 images, batch 8, 1 epoch) ended in torch's
    ZeroDivisionError from the one-cycle schedule's one-step warm-up."""
    assert main(_argv(cifar_root, tmp_path / "run", "--epochs", "1", "--batch-size", "8")) == 0
    assert (tmp_path / "run" / "last.pt").is_file()


@pytest.mark.parametrize("kind", ["folder", "link"])
def test_a_checkpoint_path_that_is_no_file_is_refused_before_training(
    kind: str, cifar_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: with a folder at ``OUT/last.pt`` a whole epoch trained, then the checkpoint
    failed to save ("unexpected error: IsADirectoryError", the epoch lost). A link there to a
    file outside the folder would have been read as the run's checkpoint."""
    out, mine = tmp_path / "run", tmp_path / "mine.pt"
    out.mkdir()
    if kind == "folder":
        (out / "last.pt").mkdir()
    else:
        mine.write_bytes(b"my own file")
        (out / "last.pt").symlink_to(mine)
    assert main(_argv(cifar_root, out, "--epochs", "1", "--batch-size", "16")) == 2
    line = _one_line_error(capsys)
    assert ("is not a file" if kind == "folder" else "leads outside the output folder") in line
    assert kind == "folder" or mine.read_bytes() == b"my own file"


@pytest.mark.parametrize("lr", ["nan", "inf", "-0.1", "0"])
def test_bad_learning_rate_is_refused_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lr: str
) -> None:
    assert main(_argv(tmp_path / "no-data", tmp_path / "run", "--lr", lr)) == 2
    assert "option lr must be" in _one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_train_config_is_checked_like_attack_options() -> None:
    with pytest.raises(ValueError, match="option momentum must be"):
        TrainConfig(momentum=1.5)
    with pytest.raises(ValueError, match="option lr is too large"):
        TrainConfig(lr=10**400)
    with pytest.raises(ValueError, match="option arch must be one of"):
        TrainConfig(arch="resnet99")


def test_a_diverging_run_stops_and_keeps_the_last_good_epoch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = samples(32)
    cfg = TrainConfig(epochs=3, batch_size=16)
    calls = {"n": 0}
    real = training.augment

    def poisoned(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        calls["n"] += 1  # 2 steps per epoch: NaN images from the second epoch on
        return real(x, gen) * (float("nan") if calls["n"] > 2 else 1.0)

    monkeypatch.setattr(training, "augment", poisoned)
    with pytest.raises(TrainingDiverged, match="epoch 2 .*keeps epoch 1"):
        train(cfg, data, None, tmp_path / "run")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["epoch"] == 1
    weights = [v for v in state["state_dict"].values() if v.is_floating_point()]
    assert all(torch.isfinite(v).all() for v in weights)
    with pytest.raises(TrainingDiverged, match="no checkpoint was written"):
        train(TrainConfig(epochs=1, batch_size=16, lr=1e30), data, None, tmp_path / "new")
    assert not (tmp_path / "new" / "last.pt").exists()


def test_export_path_is_checked_before_training(
    cifar_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``--export`` replaced a user's file, replaced ``OUT/last.pt`` with weights
    that cannot resume, and a folder, a missing folder (also ``missing/../w.pt``), the run
    folder itself or an unwritable one failed with a traceback only after training."""
    precious = tmp_path / "precious.pt"
    precious.write_text("my precious\n")
    (tmp_path / "folder").mkdir()
    out = tmp_path / "run"
    init = tmp_path / "init.pt"
    torch.save({"arch": "resnet20", **load_model("default").state_dict()}, init)
    cases = [
        ([str(precious)], "is an existing file that fcrattack did not export"),
        ([str(tmp_path / "folder")], "is a folder"),
        ([str(tmp_path / "no" / "such" / "w.pt")], "does not exist"),
        ([str(out / "last.pt")], "one of the run's own files"),
        ([str(out / "manifest.json")], "one of the run's own files"),
        ([str(out)], "is the run folder"),
        ([str(tmp_path)], "is the run folder"),
        ([str(tmp_path / "missing" / ".." / "w.pt")], "does not exist"),
        ([str(init), "--init", str(init)], "one of the run's own files"),
    ]
    if Path("/proc/self").is_dir():
        cases.append((["/proc/x.pt"], "cannot write into /proc"))
    for extra, message in cases:
        argv = _argv(cifar_root, out, "--epochs", "1", "--batch-size", "16", "--export", *extra)
        assert main(argv) == 2, extra
        assert message in _one_line_error(capsys), extra
        assert not out.exists()  # refused before the run folder was made, nothing trained
    assert precious.read_text() == "my precious\n"


def test_export_replaces_only_an_earlier_export_and_names_a_failed_write(
    cifar_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Regression: an existing export path was overwritten whatever it held, and a write error
    at the end of training was a traceback."""
    out, weights = tmp_path / "run", tmp_path / "w.pt"
    argv = _argv(cifar_root, out, "--epochs", "1", "--batch-size", "16", "--export", str(weights))
    assert main(argv) == 0
    state = torch.load(weights, weights_only=True)
    assert state[EXPORT_MARK] == 1 and "optimizer" not in state
    assert load_model(str(weights))(samples(2).images).shape == (2, 10)
    assert main(argv) == 0  # resumes at the last epoch and replaces its earlier export
    mine = tmp_path / "mine.pt"
    torch.save({"arch": "resnet20"}, mine)
    with pytest.raises(ValueError, match="did not export"):  # Python: the same check
        export_weights(out / "last.pt", mine)
    with pytest.raises(ValueError, match="the run's own files"):
        export_weights(out / "last.pt", out / "last.pt")
    assert torch.load(mine, weights_only=True) == {"arch": "resnet20"}
    mine.unlink()
    before = weights.read_bytes()

    def full_disk(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    capsys.readouterr()
    assert main(argv) == 2
    line = _one_line_error(capsys)
    assert f"cannot write the exported weights {weights}: No space left" in line
    assert weights.read_bytes() == before  # the earlier export is whole, no temporary left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "w.pt"]
