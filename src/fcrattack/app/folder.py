"""The output folder of ``fcrattack.app.attack_dataset.attack_dataset``: the run's settings
(``run.json``), refusal and resume.

Resume. ``run.json`` holds the run's settings (attack, options, target, a fingerprint of the
model's weights, of the data's ids, labels and first decoded image, and the caller's ``info``).
``results.jsonl`` is a ``fcrattack.base.store.ResultStore`` keyed by image id, appended (and
fsync'ed) batch by batch once the batch's PNGs are written. Rerunning into a folder whose
``run.json`` equals the new settings continues with the images that have no record; other
settings are refused, naming the differences; a finished run (``summary.json`` written) is
refused; ``overwrite=True`` deletes the outputs first. Batch size, reader threads and the
number of processes may change between the interrupted run and its resumption.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..attacks import Attack
from ..base.store import dumps, merge_parts, output_dir, part_glob, write_json
from ..data import Dataset, ImageList
from ..data.decode import decode

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
RUN = "run.json"
#: the page's per-image state, kept while a run may be resumed
PAGE = "page"
#: every output of a run (deleted by ``overwrite``)
OUTPUTS = ("adv", "cam", "mask", "img", PAGE, RESULTS, "summary.json", "index.html", RUN)


def _digest(*chunks: bytes) -> str:
    h = hashlib.sha256()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest()[:16]


def model_fingerprint(model: nn.Module) -> str:
    """A digest of the model's class, parameter and buffer names, shapes, dtypes and values."""
    chunks = [type(model).__qualname__.encode()]
    for name, t in model.state_dict().items():
        flat = t.detach().cpu().contiguous().reshape(-1)
        chunks += [f"{name}:{tuple(t.shape)}:{t.dtype}".encode(), flat.view(torch.uint8).numpy()]
    return _digest(*chunks)


def data_fingerprint(data: Dataset | ImageList) -> dict[str, Any]:
    """The number of images, a digest of ids, labels and classes, and of the first image as
    the model sees it (so a change of size or transform shows)."""
    labels = data.labels.tolist() if isinstance(data, Dataset) else list(data.labels)
    if isinstance(data, Dataset):
        first: Any = data.images[0].detach().cpu().contiguous().numpy()
    else:
        first = decode(data.paths[0], data.transform)
    return {
        "n_images": len(data),
        "ids_labels": _digest(dumps([data.ids, labels, data.classes]).encode()),
        "first_image": "unreadable"
        if first is None
        else f"{'x'.join(map(str, first.shape))}:{_digest(first.tobytes())}",
    }


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    """``key: old -> new`` for every leaf that differs between two JSON values."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            d
            for k in sorted(old.keys() | new.keys())
            for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")
        ]
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def prepare_output(out: str | Path, settings: dict[str, Any], overwrite: bool) -> tuple[Path, int]:
    """Create or check the output folder (module docstring); returns it and the number of
    images already done. Rank 0 only: also merges the parts of an interrupted data-parallel
    run and writes ``run.json``."""
    out = output_dir(out)
    settings = json.loads(dumps(settings))
    found = [name for name in OUTPUTS if (out / name).exists()] + sorted(
        p.name for p in out.glob(part_glob(RESULTS))
    )
    if found and overwrite:
        for name in found:
            path = out / name
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        found = []
    if found:
        advice = "choose another output folder or pass --overwrite (overwrite=True)"
        if not (out / RUN).is_file():
            raise ValueError(
                f"{out} already holds the results of a run ({', '.join(found)}); {advice}"
            )
        diff = _differences(json.loads((out / RUN).read_text(encoding="utf-8")), settings)
        if diff:
            shown = "; ".join(diff[:5]) + (f"; and {len(diff) - 5} more" if len(diff) > 5 else "")
            raise ValueError(
                f"{out} holds a run with different settings ({shown}); rerun with the same "
                f"settings to resume it, or {advice}"
            )
        if (out / "summary.json").is_file():
            raise ValueError(
                f"{out} already holds the results of a run with these settings, complete "
                f"(summary.json); {advice}"
            )
        done = len(merge_parts(out, RESULTS))
        log.info(
            "resuming the run in %s: %d of %d images done", out, done, settings["data"]["n_images"]
        )
        return out, done
    write_json(out / RUN, settings)
    return out, 0


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
        "data": data_fingerprint(data),
        "info": info or {},
    }
