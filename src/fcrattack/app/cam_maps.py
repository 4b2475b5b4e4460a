"""What ``fcrattack cam`` writes: the Grad-CAM overlays and FCR masks of a data set as PNGs
(``cam/<id>.png``, ``mask/<id>.png``, named as ``fcrattack.app.attack_dataset.attack_dataset``
names them) and an ``index.html`` page of the first images, written by the same page writer
as the attack pages (``fcrattack.report.pages``); and ``compute_cams``, the maps of an
in-memory data set (the demo's)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .._version import __version__
from ..base.outputs import OutputFolder
from ..cam import fcr_mask, find_layer, gradcam
from ..data import Dataset, ImageList, batches
from ..models.mode import eval_mode
from ..report import image_table, write_page
from ..report.pages import picture_paths
from ..viz.images import display_factor, png_names
from .commit import Committer, write_region
from .labels import batch_labels
from .progress import WORKERS, progress_bar


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
    for i in progress_bar(range(0, len(data), batch_size), quiet, desc="grad-cam", unit="batch"):
        x = data.images[i : i + batch_size].to(device)
        y = data.labels[i : i + batch_size].to(device) if use_labels else None
        maps.append(gradcam(model, x, y, layer=layer).cpu())
    return torch.cat(maps)


class CamRun(NamedTuple):
    """What ``write_cams`` did: the Grad-CAM ``layer`` used, the mean mask ``area`` over the
    images written, how many were ``written``, and the ``unreadable`` files (not written)."""

    layer: str
    area: float
    written: int
    unreadable: list[str]


#: what ``fcrattack cam`` writes at the top of its folder
CAM_OUTPUTS = ("cam", "mask", "img", "index.html")


def write_cams(
    model: torch.nn.Module,
    data: Dataset | ImageList,
    out: str | Path,
    *,
    t: float = 0.2,
    layer: str | None = None,
    use_labels: bool = True,
    batch_size: int = 128,
    page: int = 20,
    quiet: bool = False,
    overwrite: bool = False,
    prefetch: int = 2,
    workers: int = WORKERS,
) -> CamRun:
    """Grad-CAM overlays and FCR masks of ``data`` as PNGs under ``out/cam`` and
    ``out/mask``, and ``out/index.html`` showing the first ``page`` images.

    Args:
        model: the classifier (its device is used).
        data: an in-memory ``Dataset`` or an ``ImageList``, streamed with
            ``prefetch`` and ``workers`` as in ``fcrattack.app.attack_dataset.attack_dataset``.
        out: the output folder (created), guarded as every command's
            (``fcrattack.base.outputs.OutputFolder``): a folder of another command, or holding
            files no fcrattack run wrote, is refused; a finished ``cam`` run too, unless
            ``overwrite``.
        t: the mask threshold in [0, 1].
        layer: the Grad-CAM layer (None: automatic).
        use_labels: the maps of the labels (PREDICTED labels: the predicted class) or, False,
            of the predicted classes.
        batch_size: images per batch.
        page: images on the page (0: no page).
        quiet: no progress bar.
        overwrite: delete the files of an earlier ``cam`` run in ``out`` first.
        prefetch, workers: batches decoded ahead, and decoding and writing threads.

    Returns a ``CamRun``: the layer used, the mean mask area, the images written and the
    unreadable files."""
    names = png_names(data.ids)
    shown = min(page, len(names))
    with OutputFolder(out, "cam", names=CAM_OUTPUTS, overwrite=overwrite) as folder:
        folder.record(
            [*(["index.html"] if shown else []), *picture_paths(shown, 0)],
            (("cam", "mask"), [n.as_posix() for n in names]),
        )
        with folder.writing():
            done = _write(
                model,
                data,
                folder.dir,
                names,
                t,
                layer,
                use_labels,
                batch_size,
                page,
                quiet,
                prefetch,
                workers,
            )
            folder.finish()
    return done


def _write(
    model: torch.nn.Module,
    data: Dataset | ImageList,
    out: Path,
    names: list[Path],
    t: float,
    layer: str | None,
    use_labels: bool,
    batch_size: int,
    page: int,
    quiet: bool,
    prefetch: int,
    workers: int,
) -> CamRun:
    """The work of ``write_cams`` in its opened folder ``out``."""
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    by_id = {k: i for i, k in enumerate(data.ids)}
    area, pixels, written = 0.0, 0, 0
    unreadable = list(data.skipped) if isinstance(data, Dataset) else []
    kept: dict[str, list[Any]] = {k: [] for k in ("x", "cam", "mask", "y", "pred", "ids", "own")}
    with (
        batches(data, batch_size, prefetch=prefetch, workers=workers) as stream,
        Committer(lambda rows: None, workers) as committer,
        progress_bar(None, quiet, total=len(data), desc="grad-cam", unit="img") as bar,
    ):
        for batch in stream:
            lost = batch.skipped if isinstance(data, ImageList) else []
            unreadable += lost
            bar.update(len(batch) + len(lost))
            if not len(batch):
                continue
            written += len(batch)
            x = batch.images.to(device)
            layer = layer or find_layer(model, x[:1])
            lab = batch_labels(model, x, batch.labels, batch.ids, None, 0)
            cams = gradcam(model, x, lab.y.to(device) if use_labels else None, layer=layer).cpu()
            masks = fcr_mask(cams, t)
            room = min(page - len(kept["ids"]), len(batch))
            if room > 0:
                with torch.no_grad(), eval_mode(model, warn=False):
                    kept["pred"].append(model(x[:room]).argmax(1).cpu())
                for key, value in (("x", batch.images), ("cam", cams), ("mask", masks)):
                    kept[key].append(value[:room])
                kept["y"].append(lab.y[:room])
                kept["ids"] += batch.ids[:room]
                kept["own"] += lab.predicted[:room].tolist()
            area, pixels = area + float(masks.sum()), pixels + masks.numel()
            scale = display_factor(x.shape[-1])
            jobs: list[Callable[[], Any]] = []
            for j, rel in enumerate(names[by_id[k]] for k in batch.ids):
                region = (batch.images[j], cams[j], masks[j], out / "cam" / rel, out / "mask" / rel)
                jobs.append(partial(write_region, *region, scale))
            committer.submit(jobs, [])
    if layer is None:
        raise ValueError(f"none of the {len(data)} images could be read")
    if kept["ids"]:
        table = image_table(
            out,
            torch.cat(kept["x"]),
            torch.cat(kept["y"]),
            kept["ids"],
            data.classes,
            {},
            cams=torch.cat(kept["cam"]),
            masks=torch.cat(kept["mask"]),
            predicted=kept["own"],
            pred_clean=torch.cat(kept["pred"]),
        )
        which = "label's" if use_labels else "predicted"
        write_page(
            out / "index.html",
            "fcrattack cam",
            f"Grad-CAM of the {which} class (layer {layer}) and the FCR mask at t = {t} "
            f"(mean area {100 * area / max(pixels, 1):.1f} %) on {written} images"
            + (f" ({len(unreadable)} unreadable files skipped)" if unreadable else "")
            + f"; the first {len(kept['ids'])} are shown. fcrattack {__version__}.",
            {},
            table,
        )
    return CamRun(layer, area / max(pixels, 1), written, unreadable)
