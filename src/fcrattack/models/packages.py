"""The pip command that installs an optional model package (torchvision, timm) for the torch
that is installed, without replacing it: the advice of the errors of ``torchvision:`` and
``timm:`` specs.

torchvision 0.N+15 goes with torch 2.N and must come from the index torch came from: PyPI for
a torch without a local version label, PyTorch's own index for a ``+cpu``, ``+cuXXX``,
``+rocmX.Y`` or ``+xpu`` build. A plain ``pip install torchvision`` would fetch PyPI's newest
torchvision and, with it, another torch (a CUDA build of several GB on x86_64 Linux).
"""

from __future__ import annotations

import re

#: local version labels of torch builds that PyTorch's index serves, one index per label
INDEXED_BUILD = re.compile(r"cpu|cu\d+|rocm\d+(\.\d+)*|xpu")
PYTORCH_INDEX = "https://download.pytorch.org/whl/"


def torchvision_command(torch_version: str, *, reinstall: bool = False) -> str | None:
    """The pip command for the torchvision that fits ``torch_version`` (``torch.__version__``,
    e.g. ``"2.13.0+cpu"``), or None for a torch outside the 2.x series or an unknown build.

    Args:
        torch_version: the installed torch's version, with its local label if any.
        reinstall: replace an installed torchvision of another build (``--force-reinstall
            --no-deps``) instead of installing a missing one beside the named torch.
    """
    match = re.fullmatch(r"2\.(\d+)\.(\d+)(?:\+(.+))?", torch_version)
    if match is None:
        return None
    minor, patch, local = match.groups()
    if local is not None and not INDEXED_BUILD.fullmatch(local):
        return None
    vision = f"'torchvision==0.{int(minor) + 15}.*'"
    index = f" --index-url {PYTORCH_INDEX}{local}" if local else ""
    if reinstall:
        return f"pip install --force-reinstall --no-deps {vision}{index}"
    return f"pip install torch==2.{minor}.{patch} {vision}{index}"


def install_advice(package: str, torch_version: str, *, broken: bool = False) -> str:
    """How to install ``package`` (a top-level module name: ``torchvision``, ``timm``, ...) so
    that the installed torch ``torch_version`` stays: the pip command(s) and the page that
    explains them. A broken timm is almost always a torchvision of another torch, so both
    broken cases replace torchvision.

    Args:
        package: the package that is missing, or installed but failing to import.
        torch_version: the installed torch's version (``torch.__version__``).
        broken: the package is installed but does not import.
    """
    docs = "docs/models-and-data.md"
    if package not in ("torchvision", "timm"):
        return f"pip install {package} ({docs})"
    vision = torchvision_command(torch_version, reinstall=broken)
    if vision is None:
        return f"install a torchvision built for torch {torch_version} ({docs})"
    then = ", then pip install timm" if package == "timm" and not broken else ""
    return f"{vision}{then} (keeps torch {torch_version}; {docs})"
