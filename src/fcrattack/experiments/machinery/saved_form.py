"""The form of what ``fcrattack reproduce`` saves, checked where it is read back (``report``,
a resumed run): a ``config.json`` entry must be an ``ExperimentConfig`` as ``to_dict`` writes
it, field by field, and a record must have the types the experiments write. A file edited or
damaged by hand is refused, naming the field, rather than counted wrongly."""

from __future__ import annotations

import dataclasses
import math
import types
from typing import Any, Union, get_args, get_origin, get_type_hints

from .spec import ExperimentConfig

#: a record's fields by type: always text, and (where present) true or false, class
#: indices, and finite numbers or null
RECORD_TEXT = ("key", "experiment", "part", "model", "attack", "attack_key", "setting", "id")
RECORD_FLAGS = ("success", "success_uint8", "clean_correct", "correct_fcr", "correct_nonfcr")
RECORD_INDICES = ("label", "pred_adv", "pred_clean", "stage_batch")
RECORD_NUMBERS = (
    *("l0", "l0_pixels", "l2", "l2_255", "linf", "linf_255", "psnr", "psnr_255"),
    *("mask_fraction", "time_s", "budget_l2"),
)


def record_problem(record: dict[str, Any]) -> str:
    """Why ``record`` (in the current form, ``upgrade``) is not one the experiments write,
    by the type of each field (``RECORD_TEXT``, ...); "" when it is."""
    for key in RECORD_TEXT:
        if not isinstance(record.get(key), str):
            return f"{key} is not text"
    for key in RECORD_FLAGS:
        if key in record and not isinstance(record[key], bool):
            return f"{key} is not true or false"
    for key in RECORD_INDICES:
        value = record.get(key, 0)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{key} is not a class index"
    for key in RECORD_NUMBERS:
        value = record.get(key)
        if value is not None and not _finite(value):
            return f"{key} is not a finite number or null"
    transfer = record.get("transfer", {})
    if not isinstance(transfer, dict) or not all(isinstance(v, bool) for v in transfer.values()):
        return "transfer is not a map to true or false"
    return ""


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
