"""One clear line for what the command line refuses or could not do: huge seeds, targets that
are no class, a missing shared folder, images that all are of the target class, unreadable or
dangling image files for ``fcrattack cam``; and ``-q`` hides every progress bar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import SHARED, _need
from fcrattack.attacks import build
from fcrattack.cli import commands, main
from fcrattack.data import samples
from fcrattack.experiments import run
from fcrattack.models import default_model
from fcrattack.viz.images import save_png
from test_experiments import tiny_masked_fgsm


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("fcrattack: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("command", ["attack", "cam", "train", "demo"])
def test_a_huge_seed_is_one_clear_line(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: "Overflow when unpacking long long" for --seed 99999999999999999999999."""
    extra = {"train": ["--data", str(tmp_path)], "attack": ["--n", "5"], "cam": ["--n", "5"]}
    argv = [command, *extra.get(command, []), "--seed", "9" * 23, "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "--seed: must be an integer from 0 to 4294967295, got 99999999... (23 digits)" in (
        _error(capsys)
    )
    with pytest.raises(
        ValueError, match="option seed must be >= 0 and <= 4294967295, got 1099511627776"
    ):
        build("pgd", default_model(), seed=2**40)
    with pytest.raises(ValueError, match="seed must be an integer from 0 to 4294967295"):
        samples(5, seed=10**30)


@pytest.mark.parametrize("threads", ["100000", "9" * 5000])
def test_too_many_threads_is_one_clear_line(
    threads: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``--threads 100000`` crashed torch's thread pool (exit 139), and 20000
    stopped it with an OpenMP error."""
    argv = ["-q", "--threads", threads, "attack", "--n", "2", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    err = _error(capsys)
    cpus = os.cpu_count() or 1
    assert "--threads: " in err and len(err) < 200, err
    if len(threads) < 20:
        assert f"at most {4 * cpus} threads" in err and "got '100000'" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("target", ["\u00b2", "\uff13", "\u0663"])
def test_a_target_of_other_digits_is_no_class_index(
    target: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``--target ²`` gave "invalid literal for int() with base 10: '²'"."""
    argv = ["-q", "attack", "--attack", "fgsm", "--target", target, "--out", str(tmp_path)]
    assert main(argv) == 2
    assert f"--target: class {target!r} is not one of the model's 10 classes" in _error(capsys)


def test_a_missing_shared_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: "class folder missing: /nonexistent/data/cifar10-jpeg/airplane"."""
    missing = tmp_path / "nowhere"
    out = tmp_path / "out"
    assert main(["-q", "reproduce", "whitebox", "--shared", str(missing), "--out", str(out)]) == 2
    err = _error(capsys)
    assert f"the shared folder {missing} (--shared) does not exist" in err
    assert "FCRATTACK_SHARED" in err and not out.exists()
    monkeypatch.setenv("FCRATTACK_SHARED", str(missing))
    assert main(["-q", "reproduce", "whitebox", "--out", str(out)]) == 2
    assert f"the shared folder {missing} (the default" in _error(capsys)
    missing.write_text("a file")  # it said "does not exist"
    assert main(["-q", "reproduce", "whitebox", "--shared", str(missing), "--out", str(out)]) == 2
    assert f"the shared folder {missing} (--shared) is not a folder" in _error(capsys)


def test_images_all_of_the_target_class_are_said_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: "no image was attacked" when every image already was of the target class."""
    data = samples(40)
    root = tmp_path / "data" / "cat"
    cats = [i for i in range(len(data)) if int(data.labels[i]) == 3][:3]
    for i in cats:
        save_png(data.images[i], root / f"{i}.png")
    argv = ["-q", "attack", "--attack", "fgsm", "--data", str(tmp_path / "data")]
    assert (
        main([*argv, "--dataset", "folder", "--target", "cat", "--out", str(tmp_path / "o")]) == 2
    )
    assert (
        "no image was attacked: of 3 images, 3 already are of the target class 3 (cat)"
        in _error(capsys)
    )
    # the corrected rerun (another target) replaces the run that attacked nothing
    assert (
        main([*argv, "--dataset", "folder", "--target", "dog", "--out", str(tmp_path / "o")]) == 0
    )


def test_cam_names_unreadable_and_dangling_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: `fcrattack cam` counted unreadable images as written and skipped links to
    missing files silently."""
    data = samples(2)
    root = tmp_path / "flat"
    for i in range(2):
        save_png(data.images[i], root / f"{i}.png")
    (root / "broken.png").write_bytes(b"not a png")
    os.symlink(tmp_path / "gone.jpg", root / "dangling.jpg")
    out = tmp_path / "out"
    argv = ["-q", "cam", "--data", str(root), "--labels", "pred", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 images, mean mask area" in printed
    assert "2 unreadable files not written: " in printed
    assert "broken.png" in printed and "dangling.jpg" in printed
    assert sorted(p.name for p in (out / "cam").iterdir()) == ["0.png", "1.png"]


def test_quiet_reproduce_shows_no_progress_bars(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: -q still printed the progress bars of `fcrattack reproduce`."""
    root = _need(SHARED)
    run(tiny_masked_fgsm(4), out_dir=tmp_path / "q", root=root, quiet=True)
    err = capsys.readouterr().err
    assert "img/s" not in err and "%|" not in err, err
    run(tiny_masked_fgsm(4), out_dir=tmp_path / "loud", root=root)
    assert "%|" in capsys.readouterr().err  # the bars are there without quiet
    seen = {}
    monkeypatch.setattr(commands.experiments, "reproduce", lambda *a, **k: seen.update(k) or {})
    monkeypatch.setattr(commands.report, "render", lambda out: (out, out))
    assert main(["-q", "reproduce", "whitebox", "--out", str(tmp_path / "cli")]) == 0
    assert seen["quiet"] is True


@pytest.mark.parametrize("command", ["attack", "cam"])
def test_a_dataset_without_data_is_refused(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression: ``--dataset imagenet`` without ``--data`` was ignored silently and the
    bundled CIFAR-10 samples attacked."""
    argv = ["-q", command, "--n", "2", "--dataset", "imagenet", "--out", str(tmp_path / "o")]
    assert main(argv) == 2
    assert "--dataset imagenet needs --data" in _error(capsys)
    assert not (tmp_path / "o").exists()


BROKEN_MODELS = """
import torch
from torch import nn
from fcrattack.models import default_model


class Own(BaseException):  # an exception class of the model's own, outside Exception
    pass


RAISES = {
    "runtime": lambda: RuntimeError("boom"),
    "exit": lambda: SystemExit(0),
    "generator": lambda: GeneratorExit("closed"),
    "own": lambda: Own("own failure"),
    "stop": lambda: StopIteration("stopped"),
}


class _Boom(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kind):
        ctx.kind = kind
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        raise RAISES[ctx.kind]()


class Broken(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.net, self.kind = default_model(), kind

    def forward(self, x):
        if self.kind == "detach":
            return self.net(x.detach())
        if self.kind.startswith("backward-"):
            return self.net(_Boom.apply(x, self.kind.split("-")[1]))
        if self.kind.startswith("always-"):  # the load-time probe's call included
            raise RAISES[self.kind.split("-")[1]]()
        if self.kind == "keyerror" and len(x) > 1:
            raise KeyError("lookup failed")
        if self.kind == "exit" and len(x) > 1:
            raise SystemExit(0)
        if self.kind == "generator" and len(x) > 1:
            raise GeneratorExit("closed")
        if self.kind == "oom" and len(x) > 2:  # what MPS raises: a plain RuntimeError
            raise RuntimeError("MPS backend out of memory (simulated)")
        return self.net(x)


def make(kind):
    if kind.startswith("factory-"):
        raise RAISES[kind.split("-")[1]]()
    return Broken(kind).eval()
"""


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("detach", "the model's backward pass fails on an image of shape (1, 3, 32, 32)"),
        ("backward-runtime", "backward pass fails on an image of shape (1, 3, 32, 32): Runti"),
        ("backward-exit", "backward pass fails on an image of shape (1, 3, 32, 32): SystemExit"),
        ("backward-generator", "fails on an image of shape (1, 3, 32, 32): GeneratorExit: c"),
        ("backward-own", "backward pass fails on an image of shape (1, 3, 32, 32): Own: own"),
        ("backward-stop", "pass fails on an image of shape (1, 3, 32, 32): StopIteration: s"),
        ("always-exit", "fails on images of shape (1, 3, 32, 32) (torch.float32): SystemExit"),
        ("always-generator", "on images of shape (1, 3, 32, 32) (torch.float32): GeneratorExit"),
        ("always-own", "fails on images of shape (1, 3, 32, 32) (torch.float32): Own: own"),
        ("factory-exit", "make?kind=factory-exit: broken_models.make raised SystemExit: 0"),
        ("factory-generator", "broken_models.make raised GeneratorExit: closed"),
        ("factory-own", "factory-own: broken_models.make raised Own: own failure"),
        ("keyerror", "fails on images of shape (4, 3, 32, 32) (torch.float32): KeyError"),
        ("exit", "fails on images of shape (4, 3, 32, 32) (torch.float32): SystemExit"),
        ("generator", "fails on images of shape (4, 3, 32, 32) (torch.float32): GeneratorExit"),
    ],
)
def test_a_model_failing_forward_or_backward_is_one_line(
    kind: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Regression: a model whose forward detaches its input or whose backward raises ended in
    autograd's traceback in the resume probe; one raising KeyError on a batch, in a traceback
    from the attack. A SystemExit, GeneratorExit or BaseException of the model's own, raised in
    its backward, at its first call or by its factory, exited silently (SystemExit(0): exit
    code 0) or in a traceback."""
    (tmp_path / "broken_models.py").write_text(BROKEN_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["-q", "attack", "--model", f"py:broken_models:make?kind={kind}", "--n", "4"]
    argv += ["--classes", "cifar10"]  # the load-time call that counts the model's outputs
    assert main([*argv, "--attack", "pgd", "--opt", "steps=1", "--out", str(tmp_path / "o")]) == 2
    assert message in _error(capsys)


def test_a_plain_out_of_memory_error_still_halves_the_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the command line's model guard turned MPS's out-of-memory RuntimeError into
    a one-line error, so ``batch_size=auto`` no longer backed off as it does in Python."""
    (tmp_path / "broken_models.py").write_text(BROKEN_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = ["-q", "attack", "--model", "py:broken_models:make?kind=oom", "--n", "4", "--attack"]
    opts = ["pgd", "--opt", "steps=1", "--opt", "batch_size=auto", "--batch-size", "4"]
    assert main([*argv, *opts, "--out", str(tmp_path / "o")]) == 0
    assert len((tmp_path / "o" / "results.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("kind", [RuntimeError, SystemExit, GeneratorExit])
def test_an_unforeseen_error_is_one_line_and_its_traceback_behind_v(
    kind: type[BaseException], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Whatever no check foresaw ends in one line naming the exception, exit code 1; ``-v``
    logs the traceback. Regression: a SystemExit(0) from a model's backward in the middle of a
    run (past every check) ended the command silently with exit code 0."""

    def fails(args: object) -> int:
        raise kind("an unforeseen failure\nsecond line")

    monkeypatch.setattr(commands, "cmd_attacks", fails)  # the parser is built in main()
    assert main(["attacks"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        f"fcrattack: unexpected error: {kind.__name__}: an unforeseen failure | second line "
        "(the traceback: rerun with -v)"
    )
    assert main(["-v", "attacks"]) == 1
    assert "Traceback" in capsys.readouterr().err

    def says_nothing(args: object) -> int:
        raise kind()

    monkeypatch.setattr(commands, "cmd_attacks", says_nothing)
    assert main(["attacks"]) == 1
    said = capsys.readouterr().err.strip()
    assert said == f"fcrattack: unexpected error: {kind.__name__} (the traceback: rerun with -v)"
