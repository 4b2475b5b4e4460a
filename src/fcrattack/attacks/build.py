"""The one attack factory: ``ATTACKS`` (name -> class), the old names kept as aliases, and
``build`` (name + model + options, with the paper's settings on request), used by the
command line and the experiments alike. ``parse_options`` reads command-line text
through the attacks' declared options."""

from __future__ import annotations

import inspect
import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from .base import PAPER_DATASETS, Attack
from .cw import CW
from .execution import Execution
from .fcr import FCR
from .fgsm import FGSM
from .jsma import JSMA
from .masked_fgsm import MaskedFGSM
from .mifgsm import MIFGSM
from .onepixel import OnePixel
from .pgd import PGD, PGDL2
from .region import RegionMixin
from .region_ddn import RegionDDN

ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls
    for cls in (RegionDDN, FCR, MaskedFGSM, FGSM, PGD, PGDL2, MIFGSM, CW, JSMA, OnePixel)
}
#: other names that work: earlier names, and ``fcr-paper`` for the paper's literal algorithm
ALIASES = {"fcr-ddn": "region-ddn", "fcr-paper": "fcr"}
PRESETS = ("paper",)
#: the attack ``fcrattack attack`` runs by default
DEFAULT_ATTACK = RegionDDN.name


def attack_class(name: str) -> type[Attack]:
    """The class registered as ``name`` or an alias of it, in any case and with ``_`` or
    ``-`` (``"PGD"``, ``"region_ddn"``)."""
    key = name.strip().lower().replace("_", "-")
    cls = ATTACKS.get(ALIASES.get(key, key))
    if cls is None:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
    return cls


def uses_cam(cls: type[Attack]) -> bool:
    """Whether attack class ``cls`` computes its region by Grad-CAM (FCR, region DDN, masked
    FGSM), so its model must be hookable (``fcrattack.cam.check_hookable``)."""
    return issubclass(cls, RegionMixin)


def _plain(text: str) -> str:
    """Docstring markup as plain text: double-backtick literals lose their backticks."""
    return re.sub(r"``([^`]+)``", r"\1", text)


def summary(name: str) -> str:
    """One line on attack ``name``: its label (e.g. "FCR region attack (recommended)"), then
    its docstring's first paragraph as plain text, then its caveat, if any."""
    cls = attack_class(name)
    paragraph = inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0]
    text = _plain(" ".join(paragraph.split()))
    return " ".join(part for part in (cls.label and f"{cls.label}.", text, cls.caveat) if part)


def build(
    name: str,
    model: nn.Module,
    *,
    preset: str | None = None,
    dataset: str | None = None,
    **options: Any,
) -> Attack:
    """The attack ``name`` on ``model`` with ``options``; with ``preset="paper"`` the FCR
    paper's settings for ``dataset`` ("cifar10", the default, or "imagenet") come first and
    ``options`` override them."""
    cls = attack_class(name)
    if preset is None:
        if dataset is not None:
            raise ValueError("dataset= only selects the paper's settings: pass preset='paper'")
        return cls(model, **options)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return cls.paper(model, dataset or "cifar10", **options)


def parse_options(name: str, texts: Mapping[str, str]) -> dict[str, Any]:
    """Typed options of attack ``name`` from command-line text (``{"steps": "20"}``); the
    fields of ``Execution`` (``batch_size``,
    ``channels_last``, ``autocast``, ``compile``) are gathered into ``execution``."""
    cls = attack_class(name)
    declared = cls.options()
    texts = cls.current_names(dict(texts))
    run_opts = Execution.options()
    unknown = sorted(set(texts) - (set(declared) - {"execution"}) - set(run_opts))
    if unknown:
        valid = [k for k in declared if k != "execution"] + list(run_opts)
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for attack {name!r}; valid: {', '.join(valid)}"
        )
    out = {k: declared[k].parse(v) for k, v in texts.items() if k in declared}
    execution = {k: run_opts[k].parse(v) for k, v in texts.items() if k in run_opts}
    if execution:
        out["execution"] = Execution(**execution)
    return out


def describe(name: str) -> str:
    """Every option of attack ``name``: type, default, paper settings and meaning."""
    cls = attack_class(name)
    lines = [f"{cls.name}: {summary(name)}", "", "options:"]
    for key, opt in cls.options().items():
        paper = {d: cls.PAPER[d][key] for d in PAPER_DATASETS if key in cls.PAPER.get(d, {})}
        extra = f"; paper: {paper}" if paper else ""
        lines.append(f"  {opt.help()}{extra}")
    lines.append("execution (also given with --opt):")
    lines += [f"  {opt.help()}" for opt in Execution.options().values()]
    return "\n".join(lines)
