"""The output folder of ``fcrattack.app.attack_dataset.attack_dataset``: the run's settings
(``run.json``), refusal and resume, on the output-folder guard of every command
(``fcrattack.base.outputs.OutputFolder``: one writer at a time, a manifest of what the run
may write, only that replaced).

Resume. ``run.json`` holds the run's settings (attack, options, target, a fingerprint of the
model (``fcrattack.models.fingerprint``), of the data's ids, labels, every image file and
the first decoded image, the caller's ``info`` and the fcrattack version). ``results.jsonl``
is a ``fcrattack.base.store.ResultStore`` keyed by image id, appended (and fsync'ed) batch
by batch once the batch's PNGs are written. Rerunning into a folder whose ``run.json``
equals the new settings continues with the images that have no record; other settings are
refused, naming the differences, unless the run attacked no image yet (it failed on its
first batch: it is replaced); a finished run of the same settings is left as it is
(``OutputFolder.finished``: the caller has nothing to do but report it); ``overwrite=True``
deletes the files the earlier run wrote first. Batch size, reader threads and the number of
processes may change between the interrupted run and its resumption."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from .._version import __version__
from ..attacks import Attack
from ..base.outputs import OutputFolder
from ..base.store import dumps, merge_parts, part_file, part_glob, write_json
from ..data import Dataset, ImageList
from ..data.decode import decode
from ..data.listing import PREDICTED
from ..metrics.records import record_problem
from ..models.fingerprint import model_fingerprint
from ..models.probe import model_probe, same_probe
from ..report.pages import picture_paths

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
RUN = "run.json"
#: run.json's key of the model's probe (``fcrattack.models.probe``), compared with a tolerance
PROBE = "model_probe"
SUMMARY = "summary.json"
#: the page's per-image state, kept while a run may be resumed
PAGE = "page"
#: what a run writes at the top of its folder
OUTPUTS = ("adv", "cam", "mask", "img", PAGE, RESULTS, SUMMARY, "index.html", RUN)


def page_item(position: int) -> str:
    """The page's kept state of the image at ``position`` (``fcrattack.app.page``)."""
    return f"{PAGE}/{position:08d}.pt"


def _digest(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()[:16]


def data_fingerprint(data: Dataset | ImageList) -> dict[str, Any]:
    """The number of images, a digest of ids, labels and classes, one of every image (the
    bytes of its file, or its pixels for images in memory: a replaced image shows wherever
    it is), and one of the first image as the model sees it (so a change of size or
    transform shows)."""
    labels = data.labels.tolist() if isinstance(data, Dataset) else list(data.labels)
    if isinstance(data, Dataset):
        first: Any = data.images[0].detach().cpu().contiguous().numpy()
        every = [data.images.detach().cpu().contiguous().numpy().tobytes()]
    else:
        first = decode(data.paths[0], data.transform, warn=False)
        # one digest per file, in order, an unreadable one marked: no two lists hash alike
        every = [dumps([_file_digest(Path(p)) for p in data.paths]).encode()]
    return {
        "n_images": len(data),
        "ids_labels": _digest(dumps([data.ids, labels, data.classes]).encode()),
        "images": _digest(*every),
        "first_image": "unreadable"
        if first is None
        else f"{'x'.join(map(str, first.shape))}:{_digest(first.tobytes())}",
    }


def _first_image(data: Dataset | ImageList) -> torch.Tensor | None:
    """The first readable image of ``data`` as the model sees it, (1, C, H, W) in [0, 1]
    (None where none of the first 8 files decodes)."""
    if isinstance(data, Dataset):
        return data.images[:1]
    for p in data.paths[:8]:
        array = decode(p, data.transform, warn=False)
        if array is not None:
            return torch.tensor(array).permute(2, 0, 1)[None].float() / 255
    return None


def _file_digest(path: Path) -> str:
    """SHA-256 of the bytes of the file ``path``, or ``"unreadable"``."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "unreadable"


def _differences(old: Any, new: Any, prefix: str = "", skip: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two JSON values (top-level
    key ``skip`` left out)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in sorted((old.keys() | new.keys()) - {skip})
            for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        ]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def prepare_output(
    out: str | Path,
    settings: dict[str, Any],
    overwrite: bool,
    *,
    names: Sequence[Path],
    region: bool,
    page: int,
    world: int = 1,
) -> tuple[OutputFolder, int]:
    """Open, check and (for a new run) mark the output folder (module docstring); returns it,
    locked until closed, and the number of images already done (a finished run of the same
    settings: ``folder.finished``, the folder left unchanged). Rank 0 only: also merges
    the parts of an interrupted data-parallel run and writes ``run.json``.

    Args:
        out: the folder; settings: what ``run.json`` records; overwrite: replace a run.
        names: every image's PNG name (``fcrattack.viz.images.png_names``); region: whether
            Grad-CAM overlays and masks are written (``cam/``, ``mask/``); page: the images
            on the page; world: the data-parallel processes (their parts of the records).
    """
    folder = OutputFolder(
        out, "attack", names=(*OUTPUTS, part_glob(RESULTS)), overwrite=overwrite, resumable=True
    )
    try:
        settings = json.loads(dumps(settings))
        done = _resumable(folder, settings) if folder.resumed else 0
        if folder.finished:
            return folder, done
        shown = min(page, len(names))
        files = [RUN, RESULTS, SUMMARY, *(["index.html"] if shown else [])]  # what it writes
        files += [page_item(i) for i in range(shown)]
        files += picture_paths(shown, 1)
        files += [part_file(RESULTS, r) for r in range(world)] if world > 1 else []
        folder.record(
            files, (("adv", "cam", "mask") if region else ("adv",), [n.as_posix() for n in names])
        )
        if not done:
            with folder.writing():
                write_json(folder.dir / RUN, settings)
    except BaseException:
        folder.close()
        raise
    return folder, done


def _resumable(folder: OutputFolder, settings: dict[str, Any]) -> int:
    """The images done by the run in ``folder`` (unfinished, or finished: then there is
    nothing to do), which must have ``settings``; a run of other settings that attacked no
    image yet (it failed on its first batch, or skipped every image) is cleared (0), one that
    did is refused."""
    out = folder.dir
    path = out / RUN
    try:
        old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a run.json of fcrattack ({exc})") from None
    diff = ["run.json: missing"] if old is None else _differences(old, settings, skip=PROBE)
    probes = (old.get(PROBE), settings[PROBE]) if isinstance(old, dict) else (None, None)
    if None not in probes and not same_probe(*probes):
        diff.append(
            "model: its outputs or input gradient on the first image differ (another model "
            "behind the same weights and code, or a model that is not deterministic)"
        )
    with folder.writing():
        records = merge_parts(out, RESULTS, listed=folder.listed()).records.values()
    done = len(records)
    if diff and not any("skipped" not in r for r in records):
        log.info("%s: replacing a run that attacked no image (%s)", out, "; ".join(diff[:3]))
        folder.clear()
        return 0
    advice = "choose another output folder or pass --overwrite (overwrite=True) to replace it"
    if diff:
        shown = "; ".join(diff[:5]) + (f"; and {len(diff) - 5} more" if len(diff) > 5 else "")
        raise ValueError(
            f"{out} holds a run with different settings ({shown}); rerun with the same "
            f"settings to resume it, or {advice}"
        )
    if folder.finished:
        return done
    log.info(
        "resuming the run in %s: %d of %d images done", out, done, settings["data"]["n_images"]
    )
    return done


def options_json(attack: Attack) -> dict[str, Any]:
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


def run_settings(
    attack: Attack, data: Dataset | ImageList, target: Any, info: dict[str, Any] | None
) -> dict[str, Any]:
    """What ``run.json`` records and a resumed run must match."""
    return {
        "attack": attack.name,
        "options": options_json(attack),
        "target": target,
        "model": model_fingerprint(attack.model),
        PROBE: None if (first := _first_image(data)) is None else model_probe(attack.model, first),
        "data": data_fingerprint(data),
        "info": info or {},
        "fcrattack": __version__,
    }


def checked_records(
    path: Path,
    records: Iterable[dict[str, Any]],
    data: Dataset | ImageList,
    targeted: bool,
    attack: str,
) -> list[dict[str, Any]]:
    """The records of a finished run, ``path`` (``results.jsonl``: read back, or kept by a
    resumed run), in the images' order, checked against ``data`` and the run (``targeted``,
    the ``attack``'s name):
    one record per image, each at its image's position (``index``) with its label (where the
    data has one); an attacked image's fields of the form ``fcrattack.metrics.records``
    describes, with a ``target`` exactly when the run is targeted; a skipped image's reason
    true (an unreadable file does not decode; a label that equals the target does). A
    ValueError naming the file otherwise (it was edited, or belongs to another run)."""
    labels = data.labels.tolist() if isinstance(data, Dataset) else list(data.labels)
    context = ({k: i for i, k in enumerate(data.ids)}, labels, data, targeted, attack)
    out: dict[str, dict[str, Any]] = {}
    for r in records:
        problem = _record_problem(r, *context)
        if not problem and r["id"] in out:
            problem = f"two records of {r['id']!r}"
        if problem:
            raise ValueError(
                f"{path}: {problem}; the file was edited or belongs to another run: rerun "
                "with --overwrite (overwrite=True)"
            )
        out[r["id"]] = r
    missing = [k for k in data.ids if k not in out]
    if missing:
        raise ValueError(
            f"{path} lacks the records of {len(missing)} of the {len(data)} images (first: "
            f"{missing[0]!r}): the file was edited; rerun with --overwrite (overwrite=True)"
        )
    return sorted(out.values(), key=lambda r: int(r["index"]))


#: what a skipped image's record holds besides its reason (``fcrattack.app.attack``)
SKIPPED_FIELDS = {"key", "id", "index", "skipped", "label", "label_source", "target"}


def _record_problem(
    r: dict[str, Any],
    position: dict[str, int],
    labels: list[int],
    data: Dataset | ImageList,
    targeted: bool,
    attack: str,
) -> str:
    """Why the record ``r`` does not fit the run (``checked_records``); "" when it does."""
    image_id, index = r.get("id"), r.get("index")
    if (
        not isinstance(image_id, str)
        or image_id not in position
        or type(index) is not int  # not a bool, not 1.0
        or index != position[image_id]
        or r.get("key") != image_id
    ):
        return (
            f"a record of {str(image_id)[:80]!r} at position {index!r}, which the data "
            "does not hold there"
        )
    label = labels[index]
    if label != PREDICTED and "label" in r and r["label"] != label:
        return f"the record of {image_id!r} has label {r['label']!r}, the data {label}"
    reason = r.get("skipped")
    if reason is None:
        if r.get("attack") != attack:
            return f"the record of {image_id!r} is of attack {r.get('attack')!r:.40}, not {attack}"
        if ("target" in r) != targeted:
            return f"the record of {image_id!r} is {'un' if targeted else ''}targeted"
        problem = record_problem(r)
        return f"the record of {image_id!r}: {problem}" if problem else ""
    if not set(r) <= SKIPPED_FIELDS:
        return f"the record of {image_id!r} is skipped, yet holds attack results"
    if reason == "label equals the target class" and targeted:
        return "" if r.get("label") == r.get("target") else f"{image_id!r}: label is not target"
    if reason == "unreadable file" and isinstance(data, ImageList):
        readable = decode(data.paths[index], data.transform, warn=False) is not None
        return f"{image_id!r} is said unreadable, yet it decodes" if readable else ""
    return f"the record of {image_id!r} is skipped for no reason of this run ({reason!r:.60})"
