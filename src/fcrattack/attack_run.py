"""Attack a data set and write what ``fcrattack attack`` promises: adversarial PNGs, Grad-CAM
overlays and masks, per-image JSONL, a summary and an HTML page of the first images. The
command line only parses its arguments and calls ``attack_dataset`` (and, for
``fcrattack cam``, ``fcrattack.cam_run.write_cams``).

Output folder of ``attack_dataset``::

    adv/<id>.png      the adversarial images, 8-bit (``success_uint8`` is their re-check)
    cam/<id>.png      Grad-CAM overlays (region attacks only), mask/<id>.png the masks
    results.jsonl     one record per image, in the images' order (standard JSON: non-finite
                      numbers are null)
    summary.json      attack, options, data, timing and the summary of the records
    index.html, img/  a page with the first ``page`` images
    run.json          the run's settings, for resuming (and page/, the page's images, until
                      the page is written)

Saved PNGs. Every image is saved as an 8-bit PNG; ``success_uint8`` re-checks the PNG's
pixels. Images whose float result succeeds but whose PNG does not are named in a
``fcrattack.FcrattackWarning``, in ``summary.json`` (``png_not_adversarial``: count and
ids) and on the page. Attacks with a ``quantize`` option avoid them by optimising on the 8-bit
grid (``fcrattack.attacks.grid``; the command line turns it on). Floats in ``summary.json``
are rounded to 6 significant digits.

``<id>`` is the image's path relative to the data root, named by
``fcrattack.viz.images.png_names`` (``cat/x.jpg`` -> ``cat/x.jpg.png``, so ``x.png`` and
``x.jpg`` never collide).

Streaming. Images are read batch by batch (``fcrattack.data.batches``: decoded in threads
ahead of the model for an ``ImageList``), each batch is attacked, its
PNGs are written in background threads and its records appended to ``results.jsonl`` as soon
as they are on disk; only the records and the page's images stay in memory, so memory does
not grow with the number of images beyond the records (about 2 KB each). The summary is
computed from the records (``fcrattack.attack_output.summary_from_records``).

Records: the fields of ``AttackResult.records``, plus ``key`` (= ``id``), ``index`` (the
image's position in the data), ``label_source`` ("given", or "predicted": the image had no
label and the model's clean prediction was attacked), ``adv_png``, ``mask_fraction`` (region
attacks). An image that was not attacked has a record with ``skipped``: "unreadable file", or
"label equals the target class" (a fixed ``target`` class that already is the image's label);
such records are left out of the summary and counted in ``summary.json``.

Resume and refusal: see ``fcrattack.attack_output`` (same settings: continue; other
settings or a finished run: refused, naming the difference, unless ``overwrite=True``).

Under ``torchrun`` each rank attacks ``todo[rank::world]`` of the images without a record
(per-image seeds and random targets come from the image ids, so the records equal a
single-process run), appending to its own ``results.rank<r>.jsonl``; rank 0 merges them into
``results.jsonl`` in the images' order and writes summary and page.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from ._version import __version__
from .attack_batch import (
    Committer,
    Target,
    accuracy_checked,
    attack_batch,
    check_target,
)
from .attack_output import (
    RESULTS,
    data_fingerprint,
    load_page,
    merge_parts,
    model_fingerprint,
    part_name,
    png_not_adversarial,
    prepare_output,
    remove_page_items,
    rounded,
    summary_from_records,
)
from .attacks import Attack
from .data import Dataset, ImageList, batches
from .distributed import Context
from .metrics import CONVENTIONS
from .report import image_table, write_page
from .store import ResultStore, read_records, write_json, write_jsonl
from .viz.images import png_names

log = logging.getLogger(__name__)

#: default reader (decoding) and writer (PNG encoding) threads: the CPUs this process may use
WORKERS = min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 4)


def progress_bar(iterable: Iterable[Any] | None, quiet: bool, **kwargs: Any) -> Any:
    """A tqdm bar over ``iterable`` (or updated by hand), off when ``quiet``."""
    return tqdm(iterable, disable=True if quiet else None, **kwargs)


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
    data: Dataset | ImageList,
    out: str | Path,
    *,
    batch_size: int = 128,
    target: Target = None,
    info: dict[str, Any] | None = None,
    page: int = 20,
    overwrite: bool = False,
    quiet: bool = False,
    ctx: Context | None = None,
    prefetch: int = 2,
    workers: int = WORKERS,
) -> dict[str, float] | None:
    """Attack ``data`` batch by batch and write the outputs (module docstring) to ``out``.

    Args:
        attack: the attack (its model, device, options and ``seed``); built with
            ``targeted=True`` exactly when ``target`` is given.
        data: an in-memory ``Dataset`` (float images (N, 3, H, W) in [0, 1]) or an
            ``ImageList`` of files, streamed (decoded ``prefetch`` batches ahead in
            ``workers`` threads). Labels of ``PREDICTED`` (-1) are
            replaced by the model's clean prediction; ids must be unique.
        out: the output folder (created). A folder holding a run with the same settings
            is resumed, other settings or a finished run are refused
            (``fcrattack.attack_output``).
        batch_size: images per batch (>= 1): what is read, attacked and written at once;
            at most the attack's own ``execution.batch_size`` when that is a number, so
            the progress bar moves once per attacked batch.
        target: None (untargeted); a class index (images already of that class are skipped);
            "least-likely" (the clean logits' smallest class other than the label); or
            "random" (another class, seeded by the attack's seed and the image id).
        info: JSON values (model, data, preset, ...) for ``summary.json``; part of the
            settings a resumed run must match.
        page: images on the HTML page (the first ``page`` positions that were attacked;
            0: no page).
        overwrite: delete an earlier run's outputs in ``out`` first.
        quiet: no progress bar (otherwise a bar over images with img/s and ETA on rank 0).
        ctx: the data-parallel context (default: one process).
        prefetch: batches decoded ahead (>= 1); memory holds about ``prefetch + 3`` batches.
        workers: decoding threads, and as many PNG-writing threads (>= 1).

    Returns the summary (``summary_from_records``; None on
    ranks other than 0). After the first batch (or the first 16 images with given labels, if
    the batch holds fewer), a clean accuracy below 20 % on given labels is logged as a
    warning (a label-space or preprocessing mismatch); fewer images are not judged.
    """
    ctx = ctx or Context()
    check_target(target, bool(attack.targeted), attack.name)
    if len(data) == 0:
        raise ValueError("no images to attack")
    if len(set(data.ids)) != len(data):
        raise ValueError("image ids must be unique: they name the output files and records")
    settings = {
        "attack": attack.name,
        "options": _options_json(attack),
        "target": target,
        "model": model_fingerprint(attack.model),
        "data": data_fingerprint(data),
        "info": info or {},
    }
    resumed, error = 0, None
    if ctx.is_main:
        try:
            out, resumed = prepare_output(out, settings, overwrite)
        except ValueError as exc:
            error = str(exc)
    error = ctx.broadcast(error)  # also the barrier: rank 0 has merged and written run.json
    if error is not None:
        raise ValueError(error)
    out = Path(out)
    done = {r["key"] for r in read_records(out / RESULTS)}
    mine = ctx.shard([i for i, k in enumerate(data.ids) if k not in done])
    names = png_names(data.ids)
    by_id = {k: i for i, k in enumerate(data.ids)}
    by_path = {str(p): i for i, p in enumerate(data.paths)} if isinstance(data, ImageList) else {}
    store = ResultStore(out, part_name(ctx.rank) if ctx.active else RESULTS)
    inner = attack.execution.batch_size
    if isinstance(inner, int):  # the attack's own batches: read no more at once, so the
        batch_size = min(batch_size, inner)  # progress bar moves once per attacked batch
    t0 = time.perf_counter()
    bar = progress_bar(
        None, quiet or not ctx.is_main, total=len(mine), desc=attack.name, unit="img"
    )
    with (
        batches(data, batch_size, index=mine, prefetch=prefetch, workers=workers) as stream,
        Committer(store.append, workers) as committer,
        bar,
    ):
        seen: list[dict[str, Any]] | None = []  # the first records, until accuracy is checked
        for batch in stream:
            unreadable = [by_path[p] for p in batch.skipped] if by_path else []
            rows: list[dict[str, Any]] = [
                {"key": data.ids[i], "id": data.ids[i], "index": i, "skipped": "unreadable file"}
                for i in unreadable
            ]
            if len(batch):
                positions = [by_id[k] for k in batch.ids]
                jobs, attacked = attack_batch(attack, batch, positions, target, out, names, page)
                rows += attacked
                if seen is not None and ctx.is_main:
                    seen += attacked
                    seen = None if accuracy_checked(seen) else seen
            else:
                jobs = []
            committer.submit(jobs, rows)
            bar.update(len(batch) + len(unreadable))
    elapsed = time.perf_counter() - t0
    store.records.clear()
    ctx.barrier()
    if not ctx.is_main:
        return None
    records = sorted(merge_parts(out).records.values(), key=lambda r: int(r["index"]))
    write_jsonl(out / RESULTS, records)
    summary = summary_from_records(records)
    lost = png_not_adversarial(records, attack.name)
    shown = load_page(out, data.ids, page) if page else None
    if shown is not None:
        table = image_table(
            out,
            shown.x,
            shown.result.y,
            shown.ids,
            data.classes,
            {attack.name: shown.result},
            cams=shown.cams,
            predicted=shown.predicted,
        )
        label = f" ({attack.label})" if attack.label else ""
        write_page(
            out / "index.html",
            f"fcrattack attack: {attack.name}{label}",
            f"{attack.caveat + ' ' if attack.caveat else ''}{attack!r} on {len(data)} images; "
            f"the first {len(shown.ids)} attacked are shown. fcrattack {__version__}.",
            {attack.name: summary},
            table,
        )
    remove_page_items(out)
    skipped = [r for r in records if "skipped" in r]
    write_json(  # last: a folder with summary.json holds a finished run
        out / "summary.json",
        rounded(
            {
                "attack": attack.name,
                "options": _options_json(attack),
                "target": target,
                **(info or {}),
                "n_images": len(data),
                "n_attacked": len(records) - len(skipped),
                "not_attacked": {
                    reason: sum(r["skipped"] == reason for r in skipped)
                    for reason in sorted({r["skipped"] for r in skipped})
                },
                "unreadable": [r["id"] for r in skipped if r["skipped"] == "unreadable file"]
                + (data.skipped if isinstance(data, Dataset) else []),
                "resumed_after": resumed,
                "seconds": elapsed,
                "processes": ctx.world,
                "fcrattack": __version__,
                "summary": summary,
                "png_not_adversarial": lost,
                "conventions": CONVENTIONS,
            }
        ),
    )
    log.info(
        "wrote %s (adv/, results.jsonl, summary.json%s%s)",
        out,
        ", cam/, mask/" if "mask_fraction" in summary else "",
        ", index.html" if shown is not None else "",
    )
    return summary
