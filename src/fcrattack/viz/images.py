"""Image helpers for output only (PNG files, report panels); never used inside attack loops.

Every helper takes CPU or GPU tensors and returns a (3, H, W) float tensor in [0, 1] on the
CPU, ready for ``save_png``, which rounds to 8 bits exactly like
``fcrattack.metrics.quantize_uint8`` (so a saved adversarial image reloads bit-exactly as
``quantize_uint8(x_adv)``).
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib import colormaps
from PIL import Image

from ..base.store import replace_file


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [0, 1] with C = 1 or 3 -> (H, W, 3) uint8, rounded to nearest."""
    if img.dim() != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"expected a (1|3, H, W) image, got {tuple(img.shape)}")
    arr = torch.round(img.detach().float().cpu().clamp(0, 1) * 255).to(torch.uint8)
    return arr.expand(3, -1, -1).permute(1, 2, 0).contiguous().numpy()


def display_factor(size: int, min_size: int = 128) -> int:
    """Integer nearest-neighbour factor that shows a ``size``-pixel image at >= ``min_size``."""
    return max(1, -(-min_size // size))


def save_png(img: torch.Tensor, path: str | Path, scale: int = 1) -> Path:
    """Write (C, H, W) [0, 1] as an 8-bit RGB PNG, enlarged ``scale`` times by nearest
    neighbour (scale 1: exact pixels). Parent folders are created; the file is replaced
    atomically (``fcrattack.base.store.replace_file``: a link at ``path`` is replaced, never
    written through)."""
    arr = to_uint8(img)
    if scale > 1:
        arr = arr.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.fromarray(arr).save(buffer, format="PNG")
    return replace_file(path, buffer.getvalue())


def cam_overlay(img: torch.Tensor, cam: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """Grad-CAM heat-map (H, W) in [0, 1] in the jet colormap, blended over img (3, H, W)."""
    heat = colormaps["jet"](cam.detach().float().cpu().clamp(0, 1).numpy())[..., :3]
    heat_t = torch.from_numpy(heat).float().permute(2, 0, 1)
    return (1 - alpha) * img.detach().float().cpu() + alpha * heat_t


def mask_image(mask: torch.Tensor) -> torch.Tensor:
    """Binary mask (1, H, W) or (H, W) -> white where 1, black where 0, as (3, H, W)."""
    m = mask.detach().float().cpu()
    m = m[0] if m.dim() == 3 else m
    return m.clamp(0, 1).expand(3, -1, -1).clone()


def perturbation_image(delta: torch.Tensor) -> torch.Tensor:
    """Amplified perturbation (3, H, W): delta / max|delta| * 0.5 + 0.5 (grey = unchanged)."""
    d = delta.detach().float().cpu()
    peak = d.abs().max()
    return d / peak * 0.5 + 0.5 if peak > 0 else torch.full_like(d, 0.5)


def _own_name(image_id: str) -> str:
    """The PNG path an id asks for (posix): the id's own relative path, ``.png`` appended
    unless it ends in it (any case); an id that is absolute, climbs (``..``) or names nothing
    becomes one file name of its safe characters."""
    parts = [p for p in image_id.split("/") if p not in ("", ".")]
    if image_id.startswith("/") or ".." in parts or not parts:
        parts = [re.sub(r"[^\w.-]+", "_", image_id).strip(".") or "image"]
    name = "/".join(parts)
    return name if name[-4:].lower() == ".png" else name + ".png"


def png_names(ids: Sequence[str]) -> list[Path]:
    """Relative PNG paths for image ids (paths relative to a data root), distinct by
    construction, also where case does not count (macOS and Windows file systems): no name
    equals another, and none is a folder of another. Each id asks for its own path with
    ``.png`` appended (``cat/x.jpg`` -> ``cat/x.jpg.png``, so ``x.png`` and ``x.jpg`` never
    collide; absolute ids or ids with ``..`` are flattened to one name); an id whose name is
    taken by an earlier id (``a.jpg`` and ``a.jpg.png``, ``a.png`` and ``A.PNG``) gets the
    first free ``<stem>~k.png`` beside it, or, where a folder of its path is taken by a file,
    its path flattened to one name (``a.png/b.png`` -> ``a.png_b.png``). Names that ids ask
    for are never given to another id."""
    asked = [_own_name(i) for i in ids]
    wanted = {a.casefold() for a in asked}
    files: set[str] = set()  # taken names and their folders, compared without case
    folders: set[str] = set()

    def free(name: str) -> bool:
        key = name.casefold()
        return key not in files and key not in folders and not _parents(key) & files

    names = []
    for own in asked:
        name = own
        if not free(name):
            if _parents(name.casefold()) & files:
                name = name.replace("/", "_")
            stem, k, candidate = name[: -len(".png")], 0, name
            while not free(candidate) or (candidate != own and candidate.casefold() in wanted):
                k += 1
                candidate = f"{stem}~{k}.png"
            name = candidate
        files.add(name.casefold())
        folders.update(_parents(name.casefold()))
        names.append(Path(name))
    return names


def _parents(name: str) -> set[str]:
    """The folders of a relative posix path: ``a/b/c.png`` -> {``a``, ``a/b``}."""
    parts = name.split("/")
    return {"/".join(parts[:i]) for i in range(1, len(parts))}
