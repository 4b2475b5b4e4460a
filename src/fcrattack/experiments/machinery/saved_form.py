"""The form of what ``fcrattack reproduce`` saves, checked where it is read back (``report``,
a resumed run): a ``config.json`` entry must be an ``ExperimentConfig`` as ``to_dict`` writes
it, field by field, and a record must have the types the experiments write. A file edited or
damaged by hand is refused, naming the field, rather than counted wrongly."""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from ...base.store import record_key
from ...metrics.records import record_problem as attack_record_problem
from .spec import ExperimentConfig

#: the text fields of every record, the first six making up its key (``record_key``)
RECORD_TEXT = ("experiment", "part", "model", "attack_key", "setting", "id", "key", "attack")
#: the fields of a record of ``fcr-importance`` (attack "importance") besides its text
IMPORTANCE_FLAGS = ("correct_fcr", "correct_nonfcr")


def record_problem(record: dict[str, Any]) -> str:
    """Why ``record`` (in the current form, ``upgrade``) is not one the experiments write
    ("" when it is): its text fields and key, and by kind: an importance record's flags,
    label and area, an attack record's fields as ``fcrattack.metrics.records`` checks them,
    with its budget, stage and transfer results."""
    for key in RECORD_TEXT:
        if not isinstance(record.get(key), str):
            return f"{key} is not text"
    if record["key"] != record_key(*(record[k] for k in RECORD_TEXT[:6])):
        return "its key does not name its experiment, part, model, attack, setting and id"
    if record["attack"] == "importance":
        if not all(isinstance(record.get(k), bool) for k in IMPORTANCE_FLAGS):
            return "correct_fcr or correct_nonfcr is not true or false"
        label: Any = record.get("label")
        area: Any = record.get("mask_fraction")
        if isinstance(label, bool) or not isinstance(label, int) or label < 0:
            return "label is not a class index"
        return "" if _finite(area) and 0 <= area <= 1 else "mask_fraction is not in [0, 1]"
    if "skipped" in record:
        return "skipped is not a field of reproduce's records"
    problem = attack_record_problem(record)
    if problem:
        return problem
    budget, stage = record.get("budget_l2", 0.0), record.get("stage_batch", 0)
    if not _finite(budget) or budget < 0:
        return "budget_l2 is not a finite number >= 0"
    if isinstance(stage, bool) or not isinstance(stage, int) or stage < 0:
        return "stage_batch is not an integer >= 0"
    transfer = record.get("transfer", {})
    if not isinstance(transfer, dict) or not all(isinstance(v, bool) for v in transfer.values()):
        return "transfer is not a map to true or false"
    return ""


def status_problem(status: dict[str, Any]) -> str:
    """Why ``status``, one experiment's entry of ``status.json``, is not of the form
    reproduce writes ("" when it is): ``wall_s`` a finite number >= 0; per part, unique
    ``eligible_ids`` (text) counted by ``n_eligible``, at most ``n_drawn``; per model a
    ``clean_correct`` between ``n_eligible`` and ``n_drawn`` (the eligible images are those
    every model classifies correctly) and a ``clean_accuracy`` of ``clean_correct / n_drawn``."""
    wall = status.get("wall_s", 0.0)
    if not _finite(wall) or wall < 0:
        return "wall_s is not a finite number >= 0"
    parts = status.get("parts", {})
    if not isinstance(parts, dict):
        return "parts is not an object"
    for name, part in parts.items():
        if not isinstance(part, dict):
            return f"part {name!r} is not an object"
        ids: Any = part.get("eligible_ids")
        drawn: Any = part.get("n_drawn")
        eligible: Any = part.get("n_eligible")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            return f"{name}: eligible_ids is not a list of ids"
        if len(set(ids)) != len(ids) or eligible != len(ids) or not _count(drawn, len(ids)):
            return f"{name}: eligible_ids, n_eligible and n_drawn do not agree"
        models = part.get("models", {})
        if not isinstance(models, dict):
            return f"{name}: models is not an object"
        for model, found in models.items():
            correct: Any = found.get("clean_correct") if isinstance(found, dict) else None
            accuracy: Any = found.get("clean_accuracy") if isinstance(found, dict) else None
            if not _count(correct, len(ids)) or correct > drawn:
                return f"{name}: {model}: clean_correct is not between n_eligible and n_drawn"
            if not _finite(accuracy) or abs(accuracy - correct / max(drawn, 1)) > 1e-5:
                return f"{name}: {model}: clean_accuracy is not clean_correct / n_drawn"
    return ""


def _count(value: Any, least: int) -> bool:
    """Whether ``value`` is an integer (not a bool) of at least ``least``."""
    return not isinstance(value, bool) and isinstance(value, int) and value >= least


def _finite(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


#: the largest integer a saved config may hold (counts, seeds, sizes)
MAX_INT = 2**63 - 1


def config_problem(saved: Any) -> str:
    """Why ``saved`` is not an ``ExperimentConfig`` as ``to_dict`` writes it ("" when it is):
    its keys (none unknown, every one without a default present) and the type of every value
    by the field's annotation (integers non-negative, numbers finite)."""
    return _value_problem(saved, ExperimentConfig, "")


def _value_problem(value: Any, hint: Any, where: str) -> str:
    """Why ``value`` does not have the type ``hint`` (a dataclass of this module, a list,
    tuple, dict, optional or plain type); ``where`` names it in the answer."""
    at = f"{where}: " if where else ""
    origin = get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            return f"{at}not an object"
        fields = {f.name: f for f in dataclasses.fields(hint)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            return f"{at}unknown key {unknown[0]!r}"
        hints = get_type_hints(hint)
        for name, f in fields.items():
            inner = f"{where}.{name}" if where else name
            if name not in value:
                required = f.default is dataclasses.MISSING
                if required and f.default_factory is dataclasses.MISSING:
                    return f"{inner}: missing"
                continue
            problem = _value_problem(value[name], hints[name], inner)
            if problem:
                return problem
        return ""
    if origin in (Union, types.UnionType):
        options = get_args(hint)
        if value is None and type(None) in options:
            return ""
        return _value_problem(value, next(o for o in options if o is not type(None)), where)
    if origin in (list, tuple):
        if not isinstance(value, list):
            return f"{at}not a list"
        item = get_args(hint)[0]
        return next(
            (p for i, v in enumerate(value) if (p := _value_problem(v, item, f"{where}[{i}]"))), ""
        )
    if origin is dict:
        return "" if isinstance(value, dict) else f"{at}not an object"
    if hint is int:
        ok = not isinstance(value, bool) and isinstance(value, int) and 0 <= value <= MAX_INT
        return "" if ok else f"{at}not a non-negative integer (got {_short(value)})"
    if hint is float:
        return "" if _finite(value) else f"{at}not a finite number (got {_short(value)})"
    if hint is str:
        return "" if isinstance(value, str) else f"{at}not text (got {_short(value)})"
    return ""


def _short(value: Any) -> str:
    """``repr`` of a value, cut to a few characters."""
    text = repr(value)
    return text if len(text) <= 24 else f"{text[:20]}..."
