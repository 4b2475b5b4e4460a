"""The output folder of ``fcrattack.attack_run.attack_dataset``: its settings, refusal
and resume, the merge of data-parallel parts, the summary computed from the per-image records,
and the page's per-image state.

Resume. ``run.json`` holds the run's settings (attack, options, target, a fingerprint of the
model's weights, of the data's ids, labels and first decoded image, and the caller's ``info``).
``results.jsonl`` is a ``fcrattack.store.ResultStore`` keyed by image id, appended (and
fsync'ed) batch by batch once the batch's PNGs are written. Rerunning into a folder whose
``run.json`` equals the new settings continues with the images that have no record; other
settings are refused, naming the differences; a finished run (``summary.json`` written) is
refused; ``overwrite=True`` deletes the outputs first. Batch size, reader threads and the
number of processes may change between the interrupted run and its resumption.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from .attacks import AttackResult
from .data import Dataset, ImageList
from .data.decode import decode
from .metrics import perturbation_norms, summarize
from .store import ResultStore, dumps, output_dir, read_records, write_json
from .warn import warn

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
RUN = "run.json"
#: the page's per-image state, kept while a run may be resumed
PAGE = "page"
PART_GLOB = "results.rank*.jsonl"
#: every output of a run (deleted by ``overwrite``)
OUTPUTS = ("adv", "cam", "mask", "img", PAGE, RESULTS, "summary.json", "index.html", RUN)
#: the per-image norms every record carries (those of ``perturbation_norms``)
NORMS = tuple(perturbation_norms(torch.zeros(1, 1, 1, 1), torch.zeros(1, 1, 1, 1)))


def part_name(rank: int) -> str:
    """The records file of one data-parallel rank."""
    return f"results.rank{rank}.jsonl"


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
        p.name for p in out.glob(PART_GLOB)
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
        done = len(merge_parts(out))
        log.info(
            "resuming the run in %s: %d of %d images done", out, done, settings["data"]["n_images"]
        )
        return out, done
    write_json(out / RUN, settings)
    return out, 0


def merge_parts(out: Path) -> ResultStore:
    """Append the records of every rank's part whose key is new to ``results.jsonl`` (one
    fsync'ed write, ``ResultStore.append``), then delete the parts; returns the store."""
    store = ResultStore(out, RESULTS)
    parts = sorted(out.glob(PART_GLOB))
    store.append(rec for p in parts for rec in read_records(p))
    for p in parts:  # only once their records are safely in results.jsonl
        p.unlink()
    return store


def summary_from_records(rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """``AttackResult.summary`` computed from the per-image records of the attacked
    images (records with ``skipped`` are left out), so that no image needs to stay in memory:
    ASR over the clean-correct images (untargeted) or all (targeted), mean norms over the
    successful ones with 95 % intervals, the uint8 re-check count, and the mean mask
    fraction of region attacks (the mean of the per-image fractions)."""
    done = [r for r in rows if "skipped" not in r]
    if not done:
        raise ValueError("no image was attacked")
    success = torch.tensor([r["success"] for r in done])
    valid = (
        torch.tensor([r["clean_correct"] for r in done])
        if "target" not in done[0]
        else torch.ones_like(success)
    )
    norms = {
        k: torch.tensor([float("nan") if r[k] is None else r[k] for r in done], dtype=torch.float64)
        for k in NORMS
    }
    out = summarize(norms, success, valid)
    out["n_images"] = len(done)
    out["n_success_uint8"] = int((torch.tensor([r["success_uint8"] for r in done]) & valid).sum())
    if "mask_fraction" in done[0]:
        out["mask_fraction"] = float(torch.tensor([r["mask_fraction"] for r in done]).mean())
    return out


def png_not_adversarial(rows: Sequence[Mapping[str, Any]], what: str) -> dict[str, Any]:
    """The attacked images whose float result succeeds but whose saved 8-bit PNG does not
    (``success`` and not ``success_uint8``) among the records ``rows`` of run ``what``:
    ``{"count": n, "ids": [...]}``, with a ``fcrattack.FcrattackWarning`` naming the
    first five when there are any."""
    done = [r for r in rows if "skipped" not in r]
    ids = [r["id"] for r in done if r["success"] and not r["success_uint8"]]
    if ids:
        names = ", ".join(ids[:5]) + (", ..." if len(ids) > 5 else "")
        warn(
            f"{what}: {len(ids)} of {len(done)} saved adversarial PNGs are not adversarial "
            f"(they succeed only in float, before 8-bit rounding): {names}"
        )
    return {"count": len(ids), "ids": ids}


def rounded(value: Any, digits: int = 6) -> Any:
    """``value`` (JSON: dicts, lists, numbers) with every float rounded to ``digits``
    significant digits, so that summaries show 0.972973, not float32 noise."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def save_page_item(
    out: Path,
    position: int,
    x: torch.Tensor,
    cam: torch.Tensor | None,
    result: AttackResult,
    predicted: bool,
) -> None:
    """Keep what the page shows of the image at ``position`` (x (3, H, W), cam (H, W) of a
    region attack or None, the one-image ``result``, whether the label is the model's
    prediction) in ``page/<position>.pt``, so a resumed run can still show it; the folder is
    removed once the page is written (``remove_page_items``)."""
    path = out / PAGE / f"{position:08d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
    tmp = path.with_suffix(".tmp")
    item = {"x": x.clone(), "cam": None if cam is None else cam.clone(), "result": fields}
    torch.save({**item, "predicted": predicted}, tmp)
    tmp.replace(path)


class Page(NamedTuple):
    """The page's images: x (n, 3, H, W) in [0, 1], ids (n), cams (n, H, W) in [0, 1] (None
    for attacks without a region), their one AttackResult (labels in ``result.y``) and, per
    image, whether its label is the model's prediction."""

    x: torch.Tensor
    ids: list[str]
    cams: torch.Tensor | None
    result: AttackResult
    predicted: list[bool]


def load_page(out: Path, ids: Sequence[str], k: int) -> Page | None:
    """The kept page items (``save_page_item``) among the first ``k`` positions of the
    data (``ids``: every image's id, by position), in order; None when there is none."""
    items = [
        (i, torch.load(p, weights_only=True))
        for i in range(min(k, len(ids)))
        if (p := out / PAGE / f"{i:08d}.pt").is_file()
    ]
    if not items:
        return None
    cams = [item["cam"] for _, item in items]
    return Page(
        torch.stack([item["x"] for _, item in items]),
        [ids[i] for i, _ in items],
        None if any(c is None for c in cams) else torch.stack(cams),
        AttackResult.concat([AttackResult(**item["result"]) for _, item in items]),
        [bool(item["predicted"]) for _, item in items],
    )


def remove_page_items(out: Path) -> None:
    """Delete the kept page items (``page/``) of a finished run."""
    shutil.rmtree(out / PAGE, ignore_errors=True)
