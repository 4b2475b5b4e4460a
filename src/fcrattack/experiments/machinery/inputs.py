"""Which models and images a part of an experiment was run with, and a resumed run with
others refused.

A part's records name its models by name and its images by id only (``config.json`` keeps
a model's file as a path below the shared folder), so a resumed run could attack the rest of
its images with another model behind the same name (another ``--shared`` folder, a replaced
weights file, a reinstalled weights package), or keep the records of an image whose file was
replaced, and the report would mix the two. So each part's entry of ``status.json`` holds
``inputs``: a digest of every model (``model_fingerprint``) and one of every drawn image's
pixels by id, and a run that finds records of the part made with other models or other
pixels behind an id is refused (``check_same_inputs``); a resumed run may draw more images.
Entries written before ``inputs`` existed are not checked; a malformed one is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from torch import nn

from ...base.store import ResultStore
from ...data import Dataset
from ...models.fingerprint import model_fingerprint


def inputs_digest(models: dict[str, nn.Module], data: Dataset) -> dict[str, Any]:
    """The ``inputs`` of a part (module docstring):
    ``{"models": {name: hex}, "images": {id: hex}}``.

    Args:
        models: the part's models by name (``model_fingerprint``).
        data: the part's drawn images (their pixels are hashed, one digest per id).
    """
    pixels = data.images.detach().cpu().contiguous()
    return {
        "models": {n: model_fingerprint(m) for n, m in models.items()},
        "images": {
            i: hashlib.sha256(x.numpy().tobytes()).hexdigest()[:12]
            for i, x in zip(data.ids, pixels)
        },
    }


def part_status(status: Path, exp: str, part: str) -> dict[str, Any]:
    """The entry of part ``part`` of experiment ``exp`` in ``status`` (a ``status.json``;
    empty where there is none). A ValueError naming the file where it is not of the form
    ``{exp: {"parts": {part: {...}}}}`` (it was edited)."""
    try:
        found: Any = json.loads(status.read_text(encoding="utf-8")) if status.is_file() else {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{status} is not a status file ({exc})") from None
    for key in (exp, "parts", part):
        if not isinstance(found, dict):
            raise ValueError(
                f"{status} is malformed (the entry holding {key!r} is not an object); the "
                "file was edited: choose another output folder"
            )
        found = found.get(key, {})
    if not isinstance(found, dict):
        raise ValueError(f"{status}: the entry of {exp}/{part} is not an object (it was edited)")
    return found


def earlier_parts(status: Path, exp: str, parts: list[str]) -> dict[str, Any]:
    """The entries of ``parts`` of experiment ``exp`` that ``status`` (a ``status.json``)
    holds, by part name. A run starts from them, so that writing its first part's entry keeps
    the later parts' until they are run, and their resume checks (``check_same_inputs``, the
    paired kind's ``check_same_images``) read what their records were made on."""
    return {p: found for p in parts if (found := part_status(status, exp, p))}


def check_same_inputs(
    status: Path, exp: str, part: str, info: dict[str, Any], store: ResultStore
) -> dict[str, Any]:
    """Refuse to resume part ``part`` of experiment ``exp`` when ``status`` (its
    ``status.json``) says its records were made on other inputs than ``info["inputs"]``
    (``inputs_digest``) of this run's part entry ``info``, or holds malformed ``inputs``.
    Returns the inputs to record: this run's, with the digests of images drawn by earlier
    runs of the part kept (their records stay, so a later resume checks them too)."""
    inputs = info["inputs"]
    before = part_status(status, exp, part).get("inputs")
    if before is None or not store.select(experiment=exp, part=part):
        return inputs
    kinds = ("models", "images")
    if not isinstance(before, dict) or not all(isinstance(before.get(k, {}), dict) for k in kinds):
        raise ValueError(
            f"{status}: the inputs of {exp}/{part} are malformed (expected "
            '{"models": {name: digest}, "images": {id: digest}}); the file was edited: '
            "choose another output folder"
        )
    models, images = (before.get(k, {}) for k in kinds)
    changed = [n for n, d in inputs["models"].items() if models.get(n, d) != d]
    if changed:
        raise ValueError(
            f"{store.dir}: the {exp}/{part} records were made with another "
            f"{', '.join(changed)} than this run's (another --shared folder, a replaced "
            "weights file or other model code): resuming would mix them. Choose another "
            "output folder"
        )
    replaced = [i for i, d in inputs["images"].items() if images.get(i, d) != d]
    if replaced:
        raise ValueError(
            f"{store.dir}: the {exp}/{part} records were made on other pixels of "
            f"{len(replaced)} image(s) than this run reads (first: {replaced[0]}; a replaced "
            "image file or another --shared folder): resuming would mix them. Choose another "
            "output folder"
        )
    return {k: {**before.get(k, {}), **inputs[k]} for k in kinds}
