"""The command line, run in-process on the bundled samples (and the real JPEG data if present)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import fcrattack
from conftest import CIFAR_JPEG, _need
from fcrattack import default_model
from fcrattack.attacks import Execution, parse_options
from fcrattack.cli import main, parse_opts
from fcrattack.cli.inputs import CLIError
from fcrattack.data import CIFAR10_CLASSES, samples
from fcrattack.metrics import quantize_uint8
from fcrattack.models import load_checkpoint, load_model
from fcrattack.viz import perturbation_image, save_png


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _one_line_error(argv, capsys, match: str) -> None:
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fcrattack: error: "), err
    assert match in err[0], err[0]


def test_samples_are_four_of_each_class_in_round_robin_order():
    data = samples()
    assert data.images.shape == (40, 3, 32, 32) and data.classes == CIFAR10_CLASSES
    assert torch.bincount(data.labels).tolist() == [4] * 10
    assert samples(10).labels.tolist() == list(range(10))  # round-robin order


def test_samples_are_lossless_copies_of_the_jpeg_test_images():
    data = samples()
    _need(CIFAR_JPEG, "the JPEG files the samples were decoded from")
    for image_id, x in zip(data.ids[:10], data.images[:10], strict=True):
        cls, num = image_id.removesuffix(".png").rsplit("_", 1)
        jpeg = np.asarray(Image.open(CIFAR_JPEG / "test" / cls / f"{num}.jpg").convert("RGB"))
        assert np.array_equal(np.round(x.permute(1, 2, 0).numpy() * 255).astype(np.uint8), jpeg)


def test_viz_png_round_trip_and_perturbation_scaling(tmp_path):
    x = torch.rand(3, 8, 8)
    save_png(x, tmp_path / "a.png")
    back = torch.from_numpy(np.array(Image.open(tmp_path / "a.png"))).permute(2, 0, 1) / 255
    assert torch.equal(back, quantize_uint8(x))
    assert torch.equal(perturbation_image(torch.zeros(3, 4, 4)), torch.full((3, 4, 4), 0.5))
    p = perturbation_image(torch.tensor([-0.2, 0.1, 0.0]).view(3, 1, 1))
    assert torch.allclose(p.flatten(), torch.tensor([0.0, 0.75, 0.5]))


def test_parse_opts_reads_text_through_the_declared_options():
    texts = parse_opts(
        [
            "t=0.2",
            "steps=20",
            "select=best",
            "targeted=true",
            "layer=none",
            "init_scale=1/255",
            "autocast=bf16",
        ]
    )
    assert texts["steps"] == "20" and texts["layer"] == "none"
    opts = parse_options("fcr", texts)
    execution = opts.pop("execution")
    assert opts == {
        "t": 0.2,
        "steps": 20,
        "select": "best",
        "targeted": True,
        "layer": None,
        "init_scale": 1 / 255,
    }
    assert execution == Execution(autocast="bf16")
    assert parse_options("pgd", {"eps": "16/255"}) == {"eps": 16 / 255}


def test_an_option_given_twice_is_refused_naming_both(tmp_path, capsys):
    with pytest.raises(CLIError, match=r"--opt eps is given twice \(eps=0.1 and eps=0.2\)"):
        parse_opts(["eps=0.1", "steps=3", "eps=0.2"])
    args = ["-q", "attack", "--attack", "pgd", "--n", "1", "--opt", "eps=0.1", "--opt", "eps=0.2"]
    assert main([*args, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "given twice" in err[0], err


def test_demo_writes_a_page_with_images_and_predictions(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["-q", "demo", "--n", "8", "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    srcs = re.findall(r"<img src='([^']+)'", page)
    assert len(srcs) == 8 * 9  # clean, CAM, mask, and perturbation + adversarial per run
    assert all((out / s).is_file() for s in srcs)
    rows = _rows(out / "results.jsonl")
    runs = [
        "region-ddn (FCR region attack (recommended))",
        "fcr (the paper's Algorithm 1 (literal)), select=last",
        "fcr (the paper's Algorithm 1 (literal)), select=best",
    ]
    assert len(rows) == 24 and list(dict.fromkeys(r["run"] for r in rows)) == runs
    ddn = [r for r in rows if r["run"].startswith("region-ddn") and r["clean_correct"]]
    assert all(r["success_uint8"] for r in ddn)  # optimised on the 8-bit grid
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["summaries"]) == set(runs)
    assert summary["summaries"][runs[0]]["l2"] < 0.5 < summary["summaries"][runs[1]]["l2"]
    for r in rows:
        assert f"pred: {CIFAR10_CLASSES[r['pred_adv']]}" in page
        assert f"pred: {CIFAR10_CLASSES[r['pred_clean']]}" in page
    stdout = capsys.readouterr().out
    assert "| fcr (the paper's Algorithm 1 (literal)), select=best |" in stdout
    assert stdout.index("| region-ddn") < stdout.index("| fcr") and "index.html" in stdout


def test_attack_outputs_match_a_recheck_of_the_saved_pngs(tmp_path, capsys):
    common = [
        "-q",
        "--threads",
        "1",
        "attack",
        "--n",
        "6",
        "--preset",
        "paper",
        "--opt",
        "steps=3",
        "--opt",
        "select=best",
    ]
    assert main([*common, "--batch-size", "6", "--out", str(tmp_path / "a")]) == 0
    assert main([*common, "--batch-size", "4", "--out", str(tmp_path / "b")]) == 0
    rows = _rows(tmp_path / "a" / "results.jsonl")
    assert len(rows) == 6
    rows_b = _rows(tmp_path / "b" / "results.jsonl")
    for a, b in zip(rows, rows_b, strict=True):  # batching changes nothing
        assert a.keys() == b.keys()
        for key, value in a.items():
            assert value == (
                pytest.approx(b[key], rel=1e-4) if isinstance(value, float) else b[key]
            )
    png = (
        torch.stack(
            [torch.from_numpy(np.array(Image.open(tmp_path / "a" / r["adv_png"]))) for r in rows]
        )
        .permute(0, 3, 1, 2)
        .float()
        / 255
    )
    with torch.no_grad():
        pred = default_model()(png).argmax(1)
    labels = torch.tensor([r["label"] for r in rows])
    assert (pred != labels).tolist() == [r["success_uint8"] for r in rows]
    for r in rows:
        assert (tmp_path / "a" / "cam" / r["adv_png"].removeprefix("adv/")).is_file()
        assert (tmp_path / "a" / "mask" / r["adv_png"].removeprefix("adv/")).is_file()
    summary = json.loads((tmp_path / "a" / "summary.json").read_text())
    assert summary["n_images"] == 6 and summary["options"]["steps"] == 3
    assert summary["summary"]["n"] == sum(r["clean_correct"] for r in rows)
    assert "| region-ddn |" in capsys.readouterr().out  # the default attack


def test_attack_and_cam_on_the_jpeg_test_split(tmp_path, capsys, cifar_jpeg):
    data = ["--data", str(cifar_jpeg), "--n", "3", "--threads", "1"]
    assert (
        main(["-q", "attack", *data, "--attack", "masked-fgsm", "--out", str(tmp_path / "a")]) == 0
    )
    rows = _rows(tmp_path / "a" / "results.jsonl")
    assert len(rows) == 3 and all((tmp_path / "a" / r["adv_png"]).is_file() for r in rows)
    assert main(["-q", "cam", *data, "--t", "0.3", "--out", str(tmp_path / "c")]) == 0
    assert len(list((tmp_path / "c" / "cam").rglob("*.png"))) == 3
    assert len(list((tmp_path / "c" / "mask").rglob("*.png"))) == 3
    assert "Grad-CAM layer: model.layer3" in capsys.readouterr().out


def test_fcr_attack_and_cam_on_the_shipped_vgg11_through_the_cli(tmp_path, capsys, cifar_jpeg):
    pytest.importorskip(
        "fcrattack_weights_cifar10_vgg",
        reason="needs the VGG-11 weights package (pip install ./weights/cifar10-vgg)",
    )
    data = ["--model", "vgg11-cifar10", "--data", str(cifar_jpeg), "--n", "4", "--threads", "1"]
    argv = ["-q", "attack", *data, "--attack", "fcr", "--preset", "paper"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    rows = _rows(tmp_path / "a" / "results.jsonl")
    assert len(rows) == 4 and any(r["success"] for r in rows)
    assert main(["-q", "cam", *data, "--out", str(tmp_path / "c")]) == 0
    assert "Grad-CAM layer: model.features.27" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["attack", "--data", "/no/such/folder", "--out", "x"],
        ["attack", "--attack", "no-such-attack", "--out", "x"],
        ["attack", "--model", "/no/such/model.pt", "--out", "x"],
        ["attack", "--arch", "resnet99", "--out", "x"],
        ["attack", "--opt", "steps", "--out", "x"],
        ["attack", "--opt", "no_such_option=1", "--out", "x"],
        ["attack", "--opt", "select=weird", "--out", "x"],
        ["attack", "--dataset", "bogus", "--out", "x"],
        ["train", "--arch", "resnet99", "--data", "/no/such", "--out", "x"],
        ["train", "--data", "/no/such", "--out", "x"],
        ["train", "--data", "/no/such", "--lr", "nan", "--out", "x"],
        ["attack", "--classes", "imagenet", "--out", "x"],
        ["attack", "--model", f"torchscript:{__file__}", "--out", "x"],
        ["no-such-command"],
    ],
)
def test_user_errors_exit_2_with_one_line(argv, tmp_path, capsys):
    argv = [a if a != "x" else str(tmp_path / "out") for a in argv]
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fcrattack: error: ")
    assert not (tmp_path / "out").exists()


def test_class_names_of_another_count_name_both_numbers(tmp_path, capsys):
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\nbird\n")
    argv = ["-q", "cam", "--classes", str(names), "--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "3 class names for a model with 10 outputs" in err[0], err
    assert not (tmp_path / "out").exists()


def test_train_writes_a_checkpoint_and_exports_loadable_weights(tmp_path, capsys):
    data = samples()
    for i, (image_id, x, y) in enumerate(zip(data.ids, data.images, data.labels, strict=True)):
        split = "train" if i < 30 else "test"  # round-robin order: every class in both
        save_png(x, tmp_path / "d" / split / CIFAR10_CLASSES[int(y)] / image_id)
    argv = [
        "-q",
        "--threads",
        "1",
        "train",
        "--arch",
        "resnet20",
        "--data",
        str(tmp_path / "d"),
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--out",
        str(tmp_path / "run"),
        "--export",
        str(tmp_path / "w.pt"),
    ]
    assert main(argv) == 0
    assert (tmp_path / "run" / "last.pt").is_file()
    assert "checkpoint:" in capsys.readouterr().out
    model = load_model(str(tmp_path / "w.pt"))
    assert model(data.images[:2]).shape == (2, 10)
    assert main(argv) == 0  # resumes at the last epoch: nothing left to train


def test_execution_options_from_the_command_line(tmp_path):
    """Regression: ``--opt autocast=bf16`` (and the other execution options) were refused by
    the command line although every attack takes them."""
    out = tmp_path / "bf16"
    argv = ["-q", "attack", "--attack", "pgd", "--opt", "steps=2", "--opt", "autocast=bf16"]
    argv += ["--opt", "channels_last=true", "--opt", "batch_size=auto", "--n", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    execution = json.loads((out / "summary.json").read_text())["options"]["execution"]
    assert execution == {
        "autocast": "bf16",
        "batch_size": "auto",
        "channels_last": True,
        "compile": False,
    }


def test_png_and_jpg_of_one_name_do_not_collide_and_a_rerun_keeps_the_run(tmp_path, capsys):
    """Regression: ``x.png`` and ``x.jpg`` of one class folder both wrote ``adv/<class>/x.png``,
    and a rerun into a folder with results left the earlier run's PNGs beside the new records
    without a word."""
    data = samples(2)
    root = tmp_path / "data" / "cat"
    save_png(data.images[0], root / "x.png")
    Image.fromarray((data.images[1].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
        root / "x.jpg", quality=95
    )
    out = tmp_path / "out"
    argv = ["-q", "attack", "--data", str(tmp_path / "data"), "--dataset", "folder"]
    argv += ["--attack", "fgsm", "--out", str(out)]
    assert main(argv) == 0
    rows = _rows(out / "results.jsonl")
    assert sorted(r["adv_png"] for r in rows) == ["adv/cat/x.jpg.png", "adv/cat/x.png"]
    assert main(argv) == 0  # the same command again: the finished run, left as it is
    (out / "adv" / "cat" / "stale.png").write_bytes(b"")
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "adv" / "cat" / "stale.png").exists()  # the run did not write it: kept


def test_checkpoint_of_another_architecture_is_one_line(capsys, tmp_path, resnet_checkpoint):
    """Regression: a checkpoint of another architecture gave a raw traceback, not a one-line
    error with exit code 2."""
    model = ["--model", str(resnet_checkpoint(32)), "--arch", "resnet20"]
    _one_line_error(
        ["attack", *model, "--n", "1", "--out", str(tmp_path / "o")],
        capsys,
        "does not fit architecture 'resnet20'",
    )


@pytest.mark.parametrize(
    ("device", "match"),
    [
        ("tpu", "unknown device 'tpu'"),
        ("cuda:7", "device 'cuda:7'"),
        ("meta", "device 'meta' is not available"),
    ],
)
def test_unusable_devices_are_one_line(device, match, capsys, tmp_path):
    """Regression: ``--device tpu`` (or a device that is absent) gave a raw traceback."""
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    _one_line_error(["attack", "--device", device, "--out", str(tmp_path / "o")], capsys, match)


@pytest.mark.parametrize("command", [["attack"], ["cam"], ["demo", "--n", "1"]])
def test_out_naming_a_file_or_empty_is_one_line(command, capsys, tmp_path, monkeypatch):
    """Regression: ``--out`` naming a file, or ``--out ""``, gave a traceback or wrote into the
    working directory."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("keep me")
    _one_line_error([*command, "--out", str(tmp_path / "a_file")], capsys, "existing file")
    assert (tmp_path / "a_file").read_text() == "keep me"
    _one_line_error([*command, "--out", ""], capsys, "must name a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written here


def test_python_dash_m_fcrattack():
    """Regression: ``python -m fcrattack`` did not work."""
    env = {**os.environ, "PYTHONPATH": str(Path(fcrattack.__file__).parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "fcrattack", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"fcrattack {fcrattack.__version__}"


def test_mean_and_std_for_a_checkpoint_with_its_own_normalisation(capsys, tmp_path):
    """Regression: ``--mean``/``--std`` with a checkpoint holding its own ``mean``/``std``
    buffers (a ``create_model`` state dict) were dropped silently: the buffers replaced them."""
    torch.save(default_model().state_dict(), tmp_path / "own.pt")  # keys model.*, mean, std
    model = ["--model", str(tmp_path / "own.pt"), "--arch", "resnet20"]
    _one_line_error(
        [
            "attack",
            *model,
            "--mean",
            "0.4,0.4,0.4",
            "--std",
            "0.2,0.2,0.2",
            "--out",
            str(tmp_path / "o"),
        ],
        capsys,
        "holds its own normalisation (mean/std buffers): drop mean/std",
    )
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="holds its own normalisation"):
        load_checkpoint(tmp_path / "own.pt", "resnet20", std=(0.2, 0.2, 0.2))


def test_a_folder_run_prints_no_torch_warning(tmp_path):
    """Regression: every ``attack --data DIR`` printed torch's "NumPy array is not writable"
    UserWarning (the run-identity probe wrapped a read-only decoded array)."""
    data = samples()
    for image_id, x in zip(data.ids[:2], data.images[:2], strict=True):
        save_png(x, tmp_path / "d" / image_id)
    argv = ["-q", "attack", "--data", str(tmp_path / "d"), "--labels", "pred", "--n", "2"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, "--opt", "steps=2", "--out", str(tmp_path / "o")]) == 0
    assert not [w for w in caught if not issubclass(w.category, fcrattack.FcrattackWarning)]
