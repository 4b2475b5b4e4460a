"""Attack a data set and write what ``fcrattack attack`` promises: adversarial PNGs, Grad-CAM
overlays and masks, per-image JSONL, a summary and an HTML page of the first images. The
command line only parses its arguments and calls ``attack_dataset`` (and, for
``fcrattack cam``, ``fcrattack.app.cam_maps.write_cams``).

Output folder of ``attack_dataset``::

    adv/<id>.png      the adversarial images, 8-bit (``success_uint8`` is their re-check)
    cam/<id>.png      Grad-CAM overlays (region attacks only), mask/<id>.png the masks
    results.jsonl     one record per image, in the images' order (standard JSON: non-finite
                      numbers are null)
    summary.json      attack, options, data, timing and the summary of the records
    index.html, img/  a page with the first ``page`` images (img/<row>/*.png)
    run.json          the run's settings, for resuming (and page/, the page's images, until
                      the page is written)
    manifest.json     what the run may write and whether it finished: an ``--overwrite``
                      deletes those files only (``fcrattack.base.outputs``); the folder is
                      locked while a run writes it (``.fcrattack.lock``)

Saved PNGs. Every image is saved as an 8-bit PNG, and a record's norms are the PNG's
(``fcrattack.app.attack.as_saved``); ``success`` and ``pred_adv`` are the attack's own result
and ``success_uint8`` re-checks the PNG's pixels: the same image for attacks built with
``quantize=True`` (the command line refuses others). Images whose float result succeeds but
whose PNG does not are named in a
``fcrattack.FcrattackWarning``, in ``summary.json`` (``png_not_adversarial``: count and
ids) and on the page. Attacks with a ``quantize`` option avoid them by optimising on the 8-bit
grid (``fcrattack.attacks.grid``; the command line turns it on). Floats in ``summary.json``
are rounded to 6 significant digits.

``<id>`` is the image's path relative to the data root, named by
``fcrattack.viz.images.png_names`` (``cat/x.jpg`` -> ``cat/x.jpg.png``, so ``x.png`` and
``x.jpg`` never collide; distinct by construction, also where case does not count).

The pipeline, one module per step, data flowing one way: the output folder is prepared
(``folder``), images are read (``fcrattack.data.batches``), each batch is attacked
(``attack``: labels and targets from ``labels``), its PNGs written and records committed
(``commit``), and at the end the records are summarised (``summary``) and the page written
(``page``).

Streaming. Images are read batch by batch (``fcrattack.data.batches``: decoded in threads
ahead of the model for an ``ImageList``), each batch is attacked, its
PNGs are written in background threads and its records appended to ``results.jsonl`` as soon
as they are on disk; only the records and the page's images stay in memory, so memory does
not grow with the number of images beyond the records (about 2 KB each). The summary is
computed from the records (``fcrattack.metrics.summarize_records``).

Records: the fields of ``AttackResult.records``, plus ``key`` (= ``id``), ``index`` (the
image's position in the data), ``label_source`` ("given", or "predicted": the image had no
label and the model's clean prediction was attacked), ``adv_png``, ``mask_fraction`` (region
attacks). An image that was not attacked has a record with ``skipped``: "unreadable file", or
"label equals the target class" (a fixed ``target`` class that already is the image's label);
such records are left out of the summary and counted in ``summary.json``. A run in which no
image was attacked is an error saying why.

Resume and refusal: see ``fcrattack.app.folder`` (same settings: continue, and a finished run
is left as it is, its summary returned; other settings: refused, naming the difference,
unless ``overwrite=True``; a run that attacked nothing yet is replaced). A second run into a
folder being written is refused; an ``OSError`` of writing it (read-only, full) is one
``fcrattack.base.outputs.OutputError`` naming the folder, the records committed before it
kept.

Under ``torchrun`` each rank attacks ``todo[rank::world]`` of the images without a record
(per-image seeds and random targets come from the image ids, so the records equal a
single-process run), appending to its own ``results.rank<r>.jsonl``; rank 0 merges them into
``results.jsonl`` in the images' order and writes summary and page.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ..attacks import Attack, uses_cam
from ..base.distributed import Context
from ..base.outputs import OutputFolder, writing
from ..base.store import ResultStore, part_file, read_records, write_jsonl
from ..data import Dataset, ImageList, batches
from ..metrics import summarize_records
from ..viz.images import png_names
from .attack import attack_batch
from .commit import Committer
from .folder import RESULTS, SUMMARY, checked_records, prepare_output, run_settings
from .labels import Target, accuracy_checked, check_target
from .page import write_attack_page
from .progress import WORKERS, progress_bar
from .summary import write_summary

log = logging.getLogger(__name__)


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
            is resumed (finished: nothing is done, its summary is returned), other settings
            are refused
            (``fcrattack.app.folder``); a folder that no fcrattack run wrote, or of another
            command, is refused, and one that another run is writing
            (``fcrattack.base.outputs``).
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
        overwrite: delete the files an earlier attack run wrote in ``out`` (those its
            manifest lists, nothing else) first.
        quiet: no progress bar (otherwise a bar over images with img/s and ETA on rank 0).
        ctx: the data-parallel context (default: one process).
        prefetch: batches decoded ahead (>= 1); memory holds about ``prefetch + 3`` batches.
        workers: decoding threads, and as many PNG-writing threads (>= 1).

    Returns the summary (``fcrattack.metrics.summarize_records``; None on
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
    names = png_names(data.ids)
    settings = run_settings(attack, data, target, info)
    folder, resumed, finished = _prepare(out, settings, overwrite, ctx, names, page, attack)
    if finished:
        return _finished(folder, data, target is not None, attack.name)
    inner = attack.execution.batch_size
    if isinstance(inner, int):  # the attack's own batches: read no more at once, so the
        batch_size = min(batch_size, inner)  # progress bar moves once per attacked batch
    with ExitStack() as held:
        if folder is not None:  # rank 0 holds the folder's lock until the run ends
            held.enter_context(folder)
        held.enter_context(writing(out))
        t0 = time.perf_counter()
        step = _Step(attack, data, Path(out), names, target, page, check=ctx.is_main)
        store = _attack_all(step, batch_size, ctx, quiet, prefetch, workers)
        elapsed = time.perf_counter() - t0
        if folder is None:
            return None
        records = checked_records(
            folder.dir / RESULTS, store.records.values(), data, target is not None, attack.name
        )
        write_jsonl(folder.dir / RESULTS, records)
        _check_attacked(records, target, data.classes)
        summary = summarize_records(records)
        shown = write_attack_page(folder.dir, attack, data.ids, data.classes, summary, page)
        write_summary(  # then the manifest: the run is finished
            folder.dir,
            attack,
            records,
            summary,
            target=target,
            info=info,
            n_images=len(data),
            unreadable=data.skipped if isinstance(data, Dataset) else [],
            resumed=resumed,
            seconds=elapsed,
            processes=ctx.world,
        )
        folder.finish()
    log.info(
        "wrote %s (adv/, results.jsonl, summary.json%s%s)",
        out,
        ", cam/, mask/" if "mask_fraction" in summary else "",
        ", index.html" if shown else "",
    )
    return summary


def _finished(
    folder: OutputFolder | None, data: Dataset | ImageList, targeted: bool, attack: str
) -> dict[str, float] | None:
    """The summary of the finished run of these settings on ``data`` (``targeted``: the run
    has a target; ``attack``: its name) in ``folder`` (None on ranks other than 0), which is
    left as it is."""
    if folder is None:
        return None
    with folder:
        path = folder.dir / RESULTS
        records = checked_records(path, read_records(path), data, targeted, attack)
    log.info(
        "%s already holds the finished results of a run with these settings: nothing to do "
        "(pass --overwrite (overwrite=True) to run it again)",
        folder.dir,
    )
    gone = [SUMMARY, *(r["adv_png"] for r in records if "adv_png" in r)]
    gone = [name for name in gone if not (folder.dir / name).is_file()]
    if gone:
        log.warning(
            "%s: %d file(s) of the run are missing (%s): pass --overwrite (overwrite=True) to "
            "write them again, once anything else in their place is moved away",
            folder.dir,
            len(gone),
            ", ".join(gone[:3]) + (", ..." if len(gone) > 3 else ""),
        )
    return summarize_records(records)


def _attack_all(
    step: _Step, batch_size: int, ctx: Context, quiet: bool, prefetch: int, workers: int
) -> ResultStore:
    """Attack this rank's images that have no record yet, batch by batch (``step``); returns
    the store with every rank's records."""
    attack, data = step.attack, step.data
    # the parts of this run's ranks (an interrupted run's were merged by ``prepare_output``)
    parts = [part_file(RESULTS, r) for r in range(ctx.world)] if ctx.world > 1 else []
    store = ctx.store(step.out, RESULTS, listed=parts)
    mine = ctx.shard([i for i, k in enumerate(data.ids) if k not in store])
    bar = progress_bar(
        None, quiet or not ctx.is_main, total=len(mine), desc=attack.name, unit="img"
    )
    with (
        batches(data, batch_size, index=mine, prefetch=prefetch, workers=workers) as stream,
        Committer(store.append, workers) as committer,
        bar,
    ):
        for batch in stream:
            committer.submit(*step(batch))
            bar.update(len(batch) + len(batch.skipped if isinstance(data, ImageList) else []))
    ctx.sync(store)
    return store


def _check_attacked(records: list[dict[str, Any]], target: Target, classes: list[str]) -> None:
    """Refuse a run in which no image was attacked, saying why each was skipped."""
    if any("skipped" not in r for r in records):
        return
    reasons = Counter(str(r["skipped"]) for r in records)
    named = (
        f" {target} ({classes[target]})"
        if isinstance(target, int) and 0 <= target < len(classes)
        else ""
    )
    said = {"label equals the target class": f"already are of the target class{named}"}
    raise ValueError(
        f"no image was attacked: of {len(records)} images, "
        + ", ".join(f"{n} {said.get(why, why)}" for why, n in reasons.most_common())
    )


def _prepare(
    out: str | Path,
    settings: dict[str, Any],
    overwrite: bool,
    ctx: Context,
    names: list[Path],
    page: int,
    attack: Attack,
) -> tuple[OutputFolder | None, int, bool]:
    """The output folder, opened on rank 0 (``prepare_output``; None on the other ranks), the
    images done and whether its run of these settings finished; its error, if any, raised on
    every rank."""
    folder, resumed, error = None, 0, None
    if ctx.is_main:
        try:
            folder, resumed = prepare_output(
                out,
                settings,
                overwrite,
                names=names,
                region=uses_cam(type(attack)),
                page=page,
                world=ctx.world,
            )
        except (ValueError, OSError) as exc:
            error = str(exc)
            if not ctx.active:
                raise
    finished = folder is not None and folder.finished
    # also the barrier: rank 0 has merged and written run.json
    error, finished = ctx.broadcast((error, finished))
    if error is not None:
        if folder is not None:
            folder.close()
        raise ValueError(error)
    return folder, resumed, finished


class _Step:
    """Attack one batch of the stream: the records of its unreadable files and of its
    attacked images, and the PNG writes to do; checks the clean accuracy on the first
    records (``check``: on rank 0 only)."""

    def __init__(
        self,
        attack: Attack,
        data: Dataset | ImageList,
        out: Path,
        names: list[Path],
        target: Target,
        page: int,
        *,
        check: bool,
    ) -> None:
        self.attack, self.data, self.out, self.target, self.page = attack, data, out, target, page
        self.names = names
        self.by_id = {k: i for i, k in enumerate(data.ids)}
        paths = data.paths if isinstance(data, ImageList) else []
        self.by_path = {str(p): i for i, p in enumerate(paths)}
        self.seen: list[dict[str, Any]] | None = [] if check else None

    def __call__(self, batch: Dataset) -> tuple[list[Callable[[], Any]], list[dict[str, Any]]]:
        ids = self.data.ids
        rows: list[dict[str, Any]] = [
            {"key": ids[i], "id": ids[i], "index": i, "skipped": "unreadable file"}
            for i in (self.by_path[p] for p in batch.skipped if self.by_path)
        ]
        if not len(batch):
            return [], rows
        positions = [self.by_id[k] for k in batch.ids]
        jobs, attacked = attack_batch(
            self.attack, batch, positions, self.target, self.out, self.names, self.page
        )
        if self.seen is not None:
            self.seen += attacked
            self.seen = None if accuracy_checked(self.seen) else self.seen
        return jobs, rows + attacked
