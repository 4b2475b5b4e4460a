"""Which models a part of an experiment was run with, and a resumed run with others refused.

A part's records name its models by name only (``config.json`` keeps a model's file as a
path below the shared folder), so a resumed run could attack the rest of its images with
another model behind the same name (another ``--shared`` folder, a replaced weights file, a
reinstalled weights package), and the report would mix the two. So each part's entry of
``status.json`` holds ``inputs``: a digest of every model's weights (``model_fingerprint``),
and a run that finds records of the part made with other weights is refused
(``check_same_inputs``). Entries written before ``inputs`` existed are not checked. (The
images are not hashed: a resumed run may draw more of them, and each record names its image.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from ...base.store import ResultStore
from ...models.fingerprint import model_fingerprint


def inputs_digest(models: dict[str, nn.Module]) -> dict[str, Any]:
    """The ``inputs`` of a part (module docstring): ``{"models": {name: hex}}``.

    Args:
        models: the part's models by name (their state dicts are hashed).
    """
    return {"models": {n: model_fingerprint(m) for n, m in models.items()}}


def check_same_inputs(
    status: Path, exp: str, part: str, info: dict[str, Any], store: ResultStore
) -> None:
    """Refuse to resume part ``part`` of experiment ``exp`` when ``status`` (its
    ``status.json``) says its records were made on other inputs than ``info["inputs"]``
    (``inputs_digest``) of this run's part entry ``info``."""
    inputs = info["inputs"]
    old = json.loads(status.read_text()) if status.is_file() else {}
    before = old.get(exp, {}).get("parts", {}).get(part, {}).get("inputs")
    if not isinstance(before, dict) or not store.select(experiment=exp, part=part):
        return
    found = before.get("models")
    models: dict[str, Any] = found if isinstance(found, dict) else {}
    changed = [n for n, d in inputs["models"].items() if models.get(n, d) != d]
    if changed:
        raise ValueError(
            f"{store.dir}: the {exp}/{part} records were made with other weights of "
            f"{', '.join(changed)} than this run's (another --shared folder or a replaced "
            "weights file): resuming would mix them. Choose another output folder"
        )
