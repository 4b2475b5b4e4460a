"""Regression tests for the defects an outside test found in the seams (issue "one mechanism
per concern"); each failed before its fix. The numbers follow the issue's list (defect 5 is
in test_fastpaths.py, defect 10 in test_imagenet_model.py, defect 4's "no non-finite pixel"
for every attack in test_invariants.py)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import fcrattack
from conftest import akamaster_weights
from fcrattack import CW, FCR, JSMA, PGD, MaskedFGSM, OnePixel, RegionDDN
from fcrattack.cli import main
from fcrattack.data import samples
from fcrattack.metrics import perturbation_norms
from fcrattack.viz import save_png


def _err(capsys) -> list[str]:
    return capsys.readouterr().err.strip().splitlines()


def _one_line_error(argv, capsys, match: str) -> None:
    assert main(["-q", *argv]) == 2
    err = _err(capsys)
    assert len(err) == 1 and err[0].startswith("fcrattack: error: "), err
    assert match in err[0], err[0]


@pytest.fixture(scope="module")
def x_y():
    data = samples(4)
    return data.images, data.labels


# 1 -------------------------------------------------------------------------------------------
def test_1_cw_takes_an_int_c(resnet20, x_y, tmp_path):
    x, y = x_y
    res = CW(resnet20, c=1, steps=5).run(x, y)  # torch.full_like(c, inf) on int64 crashed
    assert res.x_adv.dtype == torch.float32 and CW(resnet20, c=1).c == 1.0
    assert (
        main(
            [
                "-q",
                "attack",
                "--attack",
                "cw",
                "--opt",
                "c=1",
                "--opt",
                "steps=2",
                "--n",
                "2",
                "--out",
                str(tmp_path / "cw"),
            ]
        )
        == 0
    )


# 2 -------------------------------------------------------------------------------------------
def test_2_onepixel_paper_preset_from_the_cli(tmp_path):
    out = tmp_path / "op"
    assert (
        main(
            [
                "-q",
                "attack",
                "--attack",
                "onepixel",
                "--preset",
                "paper",
                "--opt",
                "steps=1",
                "--n",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    options = json.loads((out / "summary.json").read_text())["options"]
    assert (options["pixels"], options["popsize"], options["steps"]) == (5, 400, 1)


# 3 -------------------------------------------------------------------------------------------
def test_3_execution_options_from_the_cli(tmp_path):
    out = tmp_path / "bf16"
    assert (
        main(
            [
                "-q",
                "attack",
                "--attack",
                "pgd",
                "--opt",
                "steps=2",
                "--opt",
                "autocast=bf16",
                "--opt",
                "channels_last=true",
                "--opt",
                "batch_size=auto",
                "--n",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    execution = json.loads((out / "summary.json").read_text())["options"]["execution"]
    assert execution == {
        "autocast": "bf16",
        "batch_size": "auto",
        "channels_last": True,
        "compile": False,
    }


# 4 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("cls", "option", "value"),
    [
        (MaskedFGSM, "eps1", math.nan),
        (FCR, "lr", math.inf),
        (FCR, "beta", math.inf),
        (FCR, "init_scale", math.inf),
        (JSMA, "theta", math.nan),
        (OnePixel, "differential_weight", math.inf),
        (PGD, "eps", math.nan),
        (RegionDDN, "gamma", math.nan),
        (CW, "c", -math.inf),
    ],
)
def test_4_nan_and_inf_options_are_rejected_by_name(resnet20, cls, option, value):
    with pytest.raises(ValueError, match=option):
        cls(resnet20, **{option: value})


def test_4_metrics_count_nan_as_changed():
    x = torch.zeros(1, 3, 2, 2)
    x_adv = x.clone()
    x_adv[0, 1, 0, 0] = math.nan
    norms = perturbation_norms(x, x_adv)
    assert norms["l0"].item() == 1 and norms["l0_pixels"].item() == 1
    assert math.isnan(norms["l2"].item())


# 6 -------------------------------------------------------------------------------------------
def test_6_whole_number_floats_for_counts(resnet20, x_y, capsys, tmp_path):
    x, y = x_y
    attack = PGD(resnet20, steps=2.0)
    assert attack.steps == 2 and isinstance(attack.steps, int)
    attack.run(x, y)  # range(2.0) failed
    with pytest.raises(ValueError, match="steps must be a whole number"):
        PGD(resnet20, steps=2.5)
    with pytest.raises(ValueError, match="steps"):
        attack.steps = 2.5  # assignment is validated too
    _one_line_error(
        ["attack", "--attack", "pgd", "--opt", "steps=2.5", "--out", str(tmp_path / "o")],
        capsys,
        "steps must be a whole number",
    )
    assert not (tmp_path / "o").exists()


# 7 -------------------------------------------------------------------------------------------
def test_7_png_and_jpg_of_one_name_do_not_collide_and_reruns_are_refused(tmp_path, capsys):
    data = samples(2)
    root = tmp_path / "data" / "cat"
    save_png(data.images[0], root / "x.png")
    from PIL import Image

    Image.fromarray((data.images[1].permute(1, 2, 0).numpy() * 255).astype(np.uint8)).save(
        root / "x.jpg", quality=95
    )
    out = tmp_path / "out"
    argv = [
        "-q",
        "attack",
        "--data",
        str(tmp_path / "data"),
        "--dataset",
        "folder",
        "--attack",
        "fgsm",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert sorted(r["adv_png"] for r in rows) == ["adv/cat/x.jpg.png", "adv/cat/x.png"]
    _one_line_error(argv[1:], capsys, "already holds the results of a run")
    (out / "adv" / "cat" / "stale.png").write_bytes(b"")
    assert main([*argv, "--overwrite"]) == 0
    assert (out / "adv" / "cat" / "stale.png").exists()  # the run did not write it: kept


# 8 -------------------------------------------------------------------------------------------
def test_8_checkpoint_of_another_architecture_is_one_line(capsys, tmp_path):
    _one_line_error(
        [
            "attack",
            "--model",
            str(akamaster_weights(32)),
            "--arch",
            "resnet20",
            "--n",
            "1",
            "--out",
            str(tmp_path / "o"),
        ],
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
def test_8_unusable_devices_are_one_line(device, match, capsys, tmp_path):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 GPUs")
    _one_line_error(["attack", "--device", device, "--out", str(tmp_path / "o")], capsys, match)


@pytest.mark.parametrize("command", [["attack"], ["cam"], ["demo", "--n", "1"]])
def test_8_out_naming_a_file_or_empty_is_one_line(command, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("keep me")
    _one_line_error([*command, "--out", str(tmp_path / "a_file")], capsys, "existing file")
    assert (tmp_path / "a_file").read_text() == "keep me"
    _one_line_error([*command, "--out", ""], capsys, "must name a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]  # nothing written here


# 9 -------------------------------------------------------------------------------------------
def test_9_target_needs_a_targeted_attack_and_another_class(resnet20, x_y):
    x, y = x_y
    with pytest.raises(ValueError, match="built untargeted but got target="):
        PGD(resnet20, steps=1).run(x, y, target=(y + 1) % 10)
    with pytest.raises(ValueError, match="target equals the true label for 1 image"):
        PGD(resnet20, steps=1, targeted=True).run(x, y, target=torch.cat([y[:1], y[1:] + 1]))


def test_9_inference_mode_works_like_normal_mode(resnet20, x_y):
    x, y = x_y
    ref = FCR(resnet20, steps=2, lr=0.1).run(x, y)
    with torch.inference_mode():
        xi, yi = x.clone(), y.clone()  # inference tensors
        res = FCR(resnet20, steps=2, lr=0.1).run(xi, yi)
        cam = fcrattack.gradcam(resnet20, xi, yi)
    assert torch.equal(res.x_adv, ref.x_adv) and torch.equal(res.mask, ref.mask)
    assert torch.equal(cam, fcrattack.gradcam(resnet20, x, y))


# 11 ------------------------------------------------------------------------------------------
def test_11_numpy_and_list_masks(resnet20, x_y):
    x, y = x_y
    mask = np.zeros((len(x), 1, 32, 32), dtype=bool)
    mask[..., :16] = True
    ref = PGD(resnet20, steps=2).run(x, y, mask=torch.as_tensor(mask).float())
    for given in (mask, mask.astype(np.float64), mask.tolist()):
        assert torch.equal(PGD(resnet20, steps=2).run(x, y, mask=given).x_adv, ref.x_adv)


def test_11_smaller_input_errors(resnet20, x_y):
    x, y = x_y
    with pytest.raises(ValueError, match="empty channel or spatial"):
        PGD(resnet20).run(torch.rand(2, 3, 0, 0), y[:2])
    result = PGD(resnet20, steps=1).run(x, y)
    with pytest.raises(ValueError, match="ids has 1 entries for 4 images"):
        result.records(["only-one"])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fcrattack.gradcam(lambda z: resnet20(z), x, y)
    with pytest.raises(ValueError, match="3-channel"):
        PGD(resnet20).run(x[:, :1], y)  # no silent broadcast into the normalised model


def test_11_dtype_repr_and_summary(resnet20, x_y, tmp_path):
    x, y = x_y
    assert PGD(resnet20, steps=1)(x.double(), y).dtype == torch.float64
    text = repr(FCR(resnet20, scale=(4.0, 4.5, 5.0)))
    assert "scale=(4.0, 4.5, 5.0)" in text and "tensor" not in text
    assert (
        main(
            [
                "-q",
                "attack",
                "--attack",
                "fgsm",
                "--n",
                "2",
                "--opt",
                "batch_size=auto",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert not any(k.startswith("_") for k in summary["options"])


def test_11_python_dash_m_fcrattack():
    env = {**os.environ, "PYTHONPATH": str(Path(fcrattack.__file__).parents[1])}
    proc = subprocess.run(
        [sys.executable, "-m", "fcrattack", "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == f"fcrattack {fcrattack.__version__}"


# review findings --------------------------------------------------------------------------
def test_options_beyond_float32_and_combinations_on_assignment(resnet20):
    with pytest.raises(ValueError, match="c is too large for float32"):
        CW(resnet20, c=1e39)
    ddn = RegionDDN(resnet20)
    with pytest.raises(ValueError, match="min_step_size"):
        ddn.min_step_size = 5.0  # the combination check runs on assignment too
    assert ddn.min_step_size == 0.01  # and the old value is kept
    assert PGD(resnet20, random_start=1).random_start is True  # 0 and 1 as bools
    assert FCR(resnet20, scale=np.array([4.0, 4.5, 5.0])).scale == (4.0, 4.5, 5.0)
    assert JSMA(resnet20, theta=2).theta == 2.0  # any non-zero theta, as before


def test_targeted_from_the_cli_is_refused_before_anything_is_written(capsys, tmp_path):
    """targeted=true without targets is refused before anything is written (the command
    line now takes targets: --target, tested in test_cli_inputs.py)."""
    _one_line_error(
        ["attack", "--attack", "pgd", "--opt", "targeted=true", "--out", str(tmp_path / "o")],
        capsys,
        "--opt targeted=true needs --target CLASS|least-likely|random",
    )
    assert not (tmp_path / "o").exists()
