"""What an attack's options and ``run()`` accept and refuse: ints where floats are meant,
whole-number floats for counts, NaN/inf and values beyond float32 refused by name, option
combinations checked on assignment, targets, ``torch.inference_mode()``, numpy and list masks,
empty or 1-channel images, the input dtype and a short repr. Each test failed on the code
before its fix (the defect is in its docstring)."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import torch

import fcrattack
from fcrattack import CW, FCR, JSMA, PGD, MaskedFGSM, OnePixel, RegionDDN
from fcrattack.cli import main
from fcrattack.data import samples
from fcrattack.models import Normalized


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture, match: str) -> None:
    assert main(["-q", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("fcrattack: error: "), err
    assert match in err[0], err[0]


@pytest.fixture(scope="module")
def x_y():
    data = samples(4)
    return data.images, data.labels


def test_cw_takes_an_int_c(resnet20, x_y, tmp_path):
    """Regression: ``CW(model, c=1)`` (an int, as the paper and torchattacks write it) and
    ``--opt c=1`` crashed in ``torch.full_like(c, inf)`` on an int64 tensor."""
    x, y = x_y
    res = CW(resnet20, c=1, steps=5).run(x, y)
    assert res.x_adv.dtype == torch.float32 and CW(resnet20, c=1).c == 1.0
    argv = ["-q", "attack", "--attack", "cw", "--opt", "c=1", "--opt", "steps=2", "--n", "2"]
    assert main([*argv, "--out", str(tmp_path / "cw")]) == 0


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
def test_nan_and_inf_options_are_rejected_by_name(resnet20, cls, option, value):
    """Regression: NaN or inf hyper-parameters passed construction and gave NaN images
    counted as successful with L0 = 0."""
    with pytest.raises(ValueError, match=option):
        cls(resnet20, **{option: value})


def test_whole_number_floats_are_counts_and_fractions_are_refused(resnet20, x_y, capsys, tmp_path):
    """Regression: whole-number floats for counts (``steps=2.0``) passed validation and failed
    in ``range()``; ``steps=2.5`` and ``--opt steps=2.5`` were not refused by name."""
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
    # a count written in digits is read exactly (10**30 was shown as 1e+30), however long
    for digits in ("1" + "0" * 30, "9" * 5000):
        _one_line_error(
            ["attack", "--attack", "pgd", "--opt", f"steps={digits}", "--out", str(tmp_path / "o")],
            capsys,
            f"steps is too large, got {digits[:8]}... ({len(digits)} digits)",
        )
    assert not (tmp_path / "o").exists()


def test_options_beyond_float32_and_combinations_on_assignment(resnet20):
    """Regression: a value beyond float32 passed as an option, and an assignment could set a
    combination of options that construction refuses."""
    with pytest.raises(ValueError, match="c is too large for float32"):
        CW(resnet20, c=1e39)
    # a count beyond int32 was taken through a float: 10**30 became 1000000000000000019884624838656
    with pytest.raises(ValueError, match=r"steps is too large, got 10000000\.\.\..*2147483647"):
        PGD(resnet20, steps=10**30)
    assert PGD(resnet20, steps=2**31 - 1).steps == 2**31 - 1
    ddn = RegionDDN(resnet20)
    with pytest.raises(ValueError, match="min_step_size"):
        ddn.min_step_size = 5.0  # the combination check runs on assignment too
    assert ddn.min_step_size == 0.01  # and the old value is kept
    assert PGD(resnet20, random_start=1).random_start is True  # 0 and 1 as bools
    assert FCR(resnet20, scale=np.array([4.0, 4.5, 5.0])).scale == (4.0, 4.5, 5.0)
    assert JSMA(resnet20, theta=2).theta == 2.0  # any non-zero theta, as before


@pytest.mark.parametrize("name", sorted(fcrattack.ATTACKS))
def test_a_misspelt_option_assigned_is_an_error(resnet20, name):
    """Regression: ``atk.stpes = 10`` set an attribute that nothing reads, and the attack ran
    with its default steps."""
    attack = fcrattack.build(name, resnet20)
    with pytest.raises(AttributeError, match=r"has no option 'stpes'.*\(options: "):
        attack.stpes = 10
    assert not hasattr(attack, "stpes")
    option = next(iter(attack.options()))
    setattr(attack, option, getattr(attack, option))  # options and the model stay settable
    attack.model = resnet20


def test_target_needs_a_targeted_attack_and_another_class(resnet20, x_y):
    """Regression: an untargeted attack given ``target=`` silently turned targeted, and a
    targeted attack with ``target == y`` counted unchanged images as successes."""
    x, y = x_y
    with pytest.raises(ValueError, match="built untargeted but got target="):
        PGD(resnet20, steps=1).run(x, y, target=(y + 1) % 10)
    with pytest.raises(ValueError, match="target equals the true label for 1 image"):
        PGD(resnet20, steps=1, targeted=True).run(x, y, target=torch.cat([y[:1], y[1:] + 1]))


def test_inference_mode_works_like_normal_mode(resnet20, x_y):
    """Regression: under ``torch.inference_mode()`` attacks and Grad-CAM failed with a
    misleading "no convolutional feature map"."""
    x, y = x_y
    ref = FCR(resnet20, steps=2, lr=0.1).run(x, y)
    with torch.inference_mode():
        xi, yi = x.clone(), y.clone()  # inference tensors
        res = FCR(resnet20, steps=2, lr=0.1).run(xi, yi)
        cam = fcrattack.gradcam(resnet20, xi, yi)
    assert torch.equal(res.x_adv, ref.x_adv) and torch.equal(res.mask, ref.mask)
    assert torch.equal(cam, fcrattack.gradcam(resnet20, x, y))


def test_numpy_and_list_masks_equal_a_tensor_mask(resnet20, x_y):
    """Regression: numpy and list masks reached a deep error."""
    x, y = x_y
    mask = np.zeros((len(x), 1, 32, 32), dtype=bool)
    mask[..., :16] = True
    ref = PGD(resnet20, steps=2).run(x, y, mask=torch.as_tensor(mask).float())
    for given in (mask, mask.astype(np.float64), mask.tolist()):
        assert torch.equal(PGD(resnet20, steps=2).run(x, y, mask=given).x_adv, ref.x_adv)


@pytest.mark.parametrize("name", ["fgsm", "pgd", "masked-fgsm", "region-ddn", "jsma", "onepixel"])
def test_a_soft_mask_is_refused_by_every_attack(resnet20, x_y, name):
    """Regression: a mask of 0.5 scaled FGSM's and PGD's perturbation but was a 0/1
    restriction for region DDN, C&W, JSMA and One-Pixel, and its mean was reported as the
    area the attack could change."""
    x, y = x_y
    mask = torch.zeros(len(x), 1, 32, 32)
    mask[..., 8:24, 8:24] = 0.5
    with pytest.raises(ValueError, match="mask values must be 0 or 1"):
        fcrattack.build(name, resnet20).run(x, y, mask=mask)
    with pytest.raises(ValueError, match="mask values must be 0 or 1"):
        fcrattack.build(name, resnet20).run(x, y, mask=mask * float("nan"))


def test_small_and_malformed_inputs_are_clear_errors(resnet20, x_y):
    """Regression: (N, 3, 0, 0) images, ``records(ids)`` with too few ids and ``gradcam`` given
    a plain function reached deep errors; 1-channel images were silently broadcast into the
    3-channel normalised model."""
    x, y = x_y
    with pytest.raises(ValueError, match="empty channel or spatial"):
        PGD(resnet20).run(torch.rand(2, 3, 0, 0), y[:2])
    result = PGD(resnet20, steps=1).run(x, y)
    with pytest.raises(ValueError, match="ids has 1 entries for 4 images"):
        result.records(["only-one"])
    with pytest.raises(TypeError, match="torch.nn.Module"):
        fcrattack.gradcam(lambda z: resnet20(z), x, y)
    for attack in (PGD(resnet20), fcrattack.RegionDDN(resnet20)):
        # no silent broadcast into the normalised model; no probe's batch size in the message
        with pytest.raises(ValueError, match="3-channel images .*, got 1-channel ones"):
            attack.run(x[:, :1], y)


def test_dtype_repr_and_summary(resnet20, x_y, tmp_path):
    """Regression: ``atk(x.double(), y)`` returned float32, FCR's repr showed a 4-D tensor,
    and ``summary.json`` listed private fields (``_auto_bs``, ``_compiled``)."""
    x, y = x_y
    assert PGD(resnet20, steps=1)(x.double(), y).dtype == torch.float64
    text = repr(FCR(resnet20, scale=(4.0, 4.5, 5.0)))
    assert "scale=(4.0, 4.5, 5.0)" in text and "tensor" not in text
    argv = ["-q", "attack", "--attack", "fgsm", "--n", "2", "--opt", "batch_size=auto"]
    assert main([*argv, "--out", str(tmp_path / "s")]) == 0
    summary = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert not any(k.startswith("_") for k in summary["options"])


def test_onepixel_refuses_more_pixels_than_the_image_has(resnet20, x_y, capsys, tmp_path):
    """Regression: ``pixels=10**6`` on a 32x32 image was accepted (a population of a
    million-pixel candidates); it is an option error naming the image size, on both roads."""
    x, y = x_y
    with pytest.raises(ValueError, match=r"pixels=1025 is more than the 1024 pixels of a 32x32"):
        OnePixel(resnet20, pixels=1025, popsize=4, steps=0).run(x, y)
    assert OnePixel(resnet20, pixels=1024, popsize=4, steps=0).run(x[:1], y[:1]).x_adv.shape
    argv = ["attack", "--attack", "onepixel", "--n", "1", "--opt", "pixels=1000000"]
    _one_line_error([*argv, "--out", str(tmp_path / "o")], capsys, "more than the 1024 pixels")


ODD_OUTPUTS = """
import torch
from torch import nn
from fcrattack.models import default_model

class Odd(nn.Module):
    def __init__(self, kind):
        super().__init__()
        self.net, self.kind = default_model(), kind

    def forward(self, x):
        out = self.net(x)
        if self.kind == "tuple":
            return out, None
        if self.kind == "nan":
            return out * float("nan")
        if self.kind == "vector":
            return out[:, 0]
        out = out.clone()
        out[0, 0] = float("inf")
        return out

def make(kind):
    return Odd(kind).eval()
"""


@pytest.mark.parametrize(
    ("kind", "message", "exact"),
    [
        (
            "tuple",
            "must return a logits tensor (N, num_classes), got tuple (",
            "Tensor (4, 10), None)",
        ),
        ("nan", "the model returned NaN or infinite logits for ", "4 of 4 images (40 of 40"),
        ("inf", "the model returned NaN or infinite logits for ", "1 of 4 images (1 of 40"),
        ("vector", "the model must return logits of shape (", "4, num_classes), got (4,)"),
    ],
    ids=["tuple", "nan", "inf", "vector"],
)
def test_a_model_output_other_than_finite_logits_is_one_clear_error(
    x_y, tmp_path, monkeypatch, capsys, kind, message, exact
):
    """Regression: a model returning ``(logits, None)`` reached an AttributeError in the output
    check, and one returning NaN or inf logits ran to the end with nothing correct and no word;
    both in Python and on the command line, for every attack and Grad-CAM; one returning
    (N,) gave an IndexError traceback in the command line's model probe."""
    (tmp_path / "odd_outputs.py").write_text(ODD_OUTPUTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    from odd_outputs import make

    x, y = x_y
    model = make(kind)
    with pytest.raises(ValueError, match=re.escape(message + exact)):
        PGD(model, steps=1).run(x, y)  # one clean pass over the batch: its counts
    for name in ("region-ddn", "fcr", "onepixel"):
        with pytest.raises(ValueError, match=re.escape(message)):
            fcrattack.build(name, model).run(x, y)
    with pytest.raises(ValueError, match=re.escape(message)):
        fcrattack.gradcam(model, x, y)
    if kind == "tuple":
        with pytest.raises(ValueError, match=re.escape(message + exact)):
            Normalized(model, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))(x)  # every loaded model's check
    spec = ["--model", f"py:odd_outputs:make?kind={kind}", "--n", "2"]
    for argv in (
        ["attack", *spec, "--attack", "pgd", "--opt", "steps=1", "--out", str(tmp_path / "p")],
        ["attack", *spec, "--opt", "steps=1", "--out", str(tmp_path / "r")],
        ["cam", *spec, "--out", str(tmp_path / "c")],
    ):
        _one_line_error(argv, capsys, message)


class _Detached(torch.nn.Module):
    """A model whose logits carry no gradient (its forward detaches them)."""

    def __init__(self, net: torch.nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).detach()


@pytest.mark.parametrize("name", ["fgsm", "pgd", "cw", "region-ddn", "jsma"])
def test_a_model_without_gradient_is_one_clear_error(resnet20, x_y, name):
    """Regression: a model returning detached logits ended in autograd's 'element 0 of
    tensors does not require grad' traceback in every gradient attack and in Grad-CAM."""
    x, y = x_y
    model = _Detached(resnet20)
    with pytest.raises(ValueError, match="does not depend on its input through autograd"):
        fcrattack.build(name, model).run(x[:2], y[:2])
    with pytest.raises(ValueError, match="does not depend on its input through autograd"):
        fcrattack.gradcam(model, x[:2], y[:2])
