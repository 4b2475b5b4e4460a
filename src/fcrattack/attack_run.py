"""Attack a data set and write what ``fcrattack attack`` promises: adversarial PNGs, Grad-CAM
overlays and masks, per-image JSONL, a summary and an HTML page of the first images; and
write the Grad-CAM overlays and masks of ``fcrattack cam``. The command line only parses its
arguments and calls :func:`attack_dataset` or :func:`write_cams`.

Output folder of :func:`attack_dataset`::

    adv/<id>.png      the adversarial images, 8-bit (``success_uint8`` is their re-check)
    cam/<id>.png      Grad-CAM overlays (region attacks only), mask/<id>.png the masks
    results.jsonl     one record per image (standard JSON: non-finite numbers are null)
    summary.json      attack, options, data, timing and AttackResult.summary()
    index.html, img/  a page with the first ``page`` images

``<id>`` is the image's path relative to the data root, named by
:func:`fcrattack.viz.images.png_names` (``cat/x.jpg`` -> ``cat/x.jpg.png``, so ``x.png`` and
``x.jpg`` never collide). A folder that already holds these outputs is refused unless
``overwrite=True``, which first deletes them (and nothing else).

Under ``torchrun`` each rank attacks ``images[rank::world]`` (per-image seeds come from the
image ids, so the records equal a single-process run) and rank 0 writes the merged JSONL,
summary and page, in the images' order.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ._version import __version__
from .attacks import Attack, AttackResult
from .cam import fcr_mask, find_layer, gradcam
from .data import Dataset
from .distributed import Context
from .metrics import CONVENTIONS
from .report import image_table, write_page
from .store import output_dir, write_json, write_jsonl
from .viz.images import cam_overlay, display_factor, mask_image, png_names, save_png

log = logging.getLogger(__name__)

OUTPUTS = ("adv", "cam", "mask", "img", "results.jsonl", "summary.json", "index.html")


def prepare_output(out: str | Path, overwrite: bool) -> Path:
    """Create the output folder ``out`` (see :func:`fcrattack.store.output_dir`); refuse one
    holding an earlier run's outputs unless ``overwrite`` (which deletes those outputs)."""
    out = output_dir(out)
    found = [name for name in OUTPUTS if (out / name).exists()]
    if found and not overwrite:
        raise ValueError(
            f"{out} already holds the results of a run ({', '.join(found)}); "
            "choose another output folder or pass --overwrite"
        )
    for name in found:
        path = out / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return out


def _bar(iterable: Iterable[Any], quiet: bool, **kwargs: Any) -> Any:
    return tqdm(iterable, disable=True if quiet else None, **kwargs)


def compute_cams(
    model: torch.nn.Module,
    data: Dataset,
    device: torch.device,
    batch_size: int,
    layer: str | None,
    use_labels: bool,
    quiet: bool = True,
) -> torch.Tensor:
    """Normalised Grad-CAM maps (N, H, W) on the CPU, for the true (or predicted) class."""
    maps = []
    for i in _bar(range(0, len(data), batch_size), quiet, desc="grad-cam", unit="batch"):
        x = data.images[i : i + batch_size].to(device)
        y = data.labels[i : i + batch_size].to(device) if use_labels else None
        maps.append(gradcam(model, x, y, layer=layer).cpu())
    return torch.cat(maps)


def _options_json(attack: Attack) -> dict[str, Any]:
    """The attack's options as JSON values (per-image tensors by shape)."""
    out: dict[str, Any] = {}
    for key, value in attack.option_values().items():
        if key == "execution":
            value = value.option_values()
        elif isinstance(value, torch.Tensor):
            value = f"per-image tensor {tuple(value.shape)}"
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out


def attack_dataset(
    attack: Attack,
    data: Dataset,
    out: str | Path,
    *,
    batch_size: int = 128,
    info: dict[str, Any] | None = None,
    page: int = 20,
    overwrite: bool = False,
    quiet: bool = False,
    ctx: Context | None = None,
) -> dict[str, float] | None:
    """Attack ``data`` in batches of ``batch_size`` and write the outputs (module docstring)
    to ``out``; ``info`` (model, data, ...) goes into ``summary.json``; ``page`` images go on
    the HTML page (0: none). Returns the summary (None on ranks other than 0)."""
    ctx = ctx or Context()
    out = prepare_output(out, overwrite) if ctx.is_main else Path(out)
    ctx.barrier()
    device = attack.device
    index = ctx.shard(list(range(len(data))))
    mine = data.subset(index) if ctx.active else data
    t0 = time.perf_counter()
    parts = [
        attack.run(
            mine.images[i : i + batch_size],
            mine.labels[i : i + batch_size],
            ids=mine.ids[i : i + batch_size],
        )
        for i in _bar(
            range(0, len(mine), batch_size),
            quiet or not ctx.is_main,
            desc=attack.name,
            unit="batch",
        )
    ]
    result = AttackResult.concat(parts) if parts else None
    elapsed = time.perf_counter() - t0
    region = result is not None and result.mask is not None
    cams = (
        compute_cams(
            attack.model,
            mine,
            device,
            batch_size,
            getattr(attack, "layer", None),
            getattr(attack, "cam_class", "true") == "true",
            quiet,
        )
        if region
        else None
    )
    scale = display_factor(data.images.shape[-1])
    names = png_names(data.ids)
    rows = result.records(mine.ids) if result is not None else []
    for i, row in enumerate(_bar(rows, quiet or not ctx.is_main, desc="writing", unit="img")):
        rel = names[index[i]]
        save_png(result.x_adv[i], out / "adv" / rel)  # type: ignore[union-attr]
        row["adv_png"] = str(Path("adv") / rel)
        if cams is not None:
            save_png(cam_overlay(mine.images[i], cams[i]), out / "cam" / rel, scale)
            save_png(mask_image(result.mask[i]), out / "mask" / rel, scale)  # type: ignore
    if ctx.active:  # rank 0 gathers every rank's rows and results, in the images' order
        gathered: list[Any] = [None] * ctx.world
        torch.distributed.all_gather_object(gathered, (index, rows, result, cams))
        if not ctx.is_main:
            return None
        order = [i for idx, *_ in gathered for i in idx]
        rows = [r for _, r in sorted(zip(order, (r for _, rs, *_ in gathered for r in rs)))]
        rank = torch.tensor(order).argsort()
        result = AttackResult.concat([g[2] for g in gathered if g[2] is not None]).subset(rank)
        if region:
            cams = torch.cat([g[3] for g in gathered if g[3] is not None])[rank]
    if result is None:
        raise ValueError("no images to attack")
    write_jsonl(out / "results.jsonl", rows)
    summary = result.summary()
    write_json(
        out / "summary.json",
        {
            "attack": attack.name,
            "options": _options_json(attack),
            **(info or {}),
            "n_images": len(data),
            "seconds": elapsed,
            "processes": ctx.world,
            "fcrattack": __version__,
            "summary": summary,
            "conventions": CONVENTIONS,
        },
    )
    if page:
        k = min(page, len(data))
        shown = cams[:k] if cams is not None else torch.zeros(k, *data.images.shape[2:])
        table = image_table(
            out,
            data.images[:k],
            data.labels[:k],
            data.ids[:k],
            data.classes,
            shown,
            {attack.name: result.subset(slice(0, k))},
        )
        write_page(
            out / "index.html",
            f"fcrattack attack: {attack.name}",
            f"{attack!r} on {len(data)} images; the first {k} are shown. fcrattack {__version__}.",
            {attack.name: summary},
            table,
        )
    log.info(
        "wrote %s (adv/, results.jsonl, summary.json%s%s)",
        out,
        ", cam/, mask/" if cams is not None else "",
        ", index.html" if page else "",
    )
    return summary


def write_cams(
    model: torch.nn.Module,
    data: Dataset,
    out: str | Path,
    *,
    t: float = 0.2,
    layer: str | None = None,
    use_labels: bool = True,
    batch_size: int = 128,
    quiet: bool = False,
) -> tuple[str, float]:
    """Grad-CAM overlays and FCR masks of ``data`` as PNGs under ``out/cam`` and ``out/mask``;
    returns (the Grad-CAM layer used, the mean mask area)."""
    out = output_dir(out)
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    layer = layer or find_layer(model, data.images[:1].to(device))
    cams = compute_cams(model, data, device, batch_size, layer, use_labels, quiet)
    masks = fcr_mask(cams, t)
    scale = display_factor(data.images.shape[-1])
    for i, rel in enumerate(_bar(png_names(data.ids), quiet, desc="writing", unit="img")):
        save_png(cam_overlay(data.images[i], cams[i]), out / "cam" / rel, scale)
        save_png(mask_image(masks[i]), out / "mask" / rel, scale)
    return layer, float(masks.mean())
