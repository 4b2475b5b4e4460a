"""The kinds of option values: small composable validators that coerce what a user naturally
writes (an int where a float is meant, a whole-number float for a count, numpy scalars) and
reject the rest, NaN and inf included, with the option's name in the message; each also reads
command-line text and describes itself for docs and help."""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

FLOAT32_MAX = 3.4028234663852886e38


class OptionError(TypeError, ValueError):
    """A bad option value or name (catch it as ValueError or TypeError)."""


class Kind:
    """What values an option takes; subclasses implement ``coerce`` and ``describe``."""

    def coerce(self, name: str, value: Any) -> Any:
        """The value as stored; raises ValueError or TypeError naming ``name``."""
        raise NotImplementedError

    def parse(self, name: str, text: str) -> Any:
        """A value from command-line text (then coerced)."""
        return self.coerce(name, text)

    def describe(self) -> str:
        """A short type description for docs and help, e.g. ``int >= 0``."""
        raise NotImplementedError


def _number(name: str, value: Any, what: str) -> float:
    """A real number from a Python/numpy/0-d tensor number; bools and strings are rejected."""
    if isinstance(value, torch.Tensor) and value.dim() == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise OptionError(f"option {name} must be {what}, got {type(value).__name__} {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int (or Fraction) beyond any float
        raise OptionError(f"option {name} is too large, got {_digits(value)}") from None


def _digits(value: Any) -> str:
    """A huge number, shortened for a message."""
    text = str(value)
    return text if len(text) <= 20 else f"{text[:8]}... ({len(text)} digits)"


def _parse_number(name: str, text: str) -> float:
    """'20', '2.5e-3', '16/255', 'nan', 'inf' -> float; anything else is an error."""
    frac = re.fullmatch(r"\s*([^/\s]+)\s*/\s*([^/\s]+)\s*", text)
    try:
        if frac:
            return float(frac.group(1)) / float(frac.group(2))
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise OptionError(f"option {name}: cannot read {text!r} as a number") from None


def _shown(value: float) -> str:
    """A bound or value for a message: whole numbers in full (a seed bound of 4294967295,
    not 4.29497e+09), others short."""
    whole = math.isfinite(value) and float(value).is_integer() and abs(value) < 1e16
    return str(int(value)) if whole else f"{value:g}"


def _bounds(lo: float | None, hi: float | None, lo_open: bool, hi_open: bool) -> str:
    parts = []
    if lo is not None:
        parts.append(f"{'>' if lo_open else '>='} {_shown(lo)}")
    if hi is not None:
        parts.append(f"{'<' if hi_open else '<='} {_shown(hi)}")
    return " and ".join(parts)


def _check_bounds(
    name: str, value: float, lo: float | None, hi: float | None, lo_open: bool, hi_open: bool
) -> None:
    if (lo is not None and (value < lo or (lo_open and value == lo))) or (
        hi is not None and (value > hi or (hi_open and value == hi))
    ):
        raise OptionError(
            f"option {name} must be {_bounds(lo, hi, lo_open, hi_open)}, got {_shown(value)}"
        )


#: the largest count an ``Int`` option takes without a bound of its own (a count is an int32
#: in torch, and a larger float would no longer be a whole number exactly)
INT_LIMIT = 2**31 - 1


class Int(Kind):
    """An integer count; whole-number floats (20.0) are accepted as ints, 2.5 is not; without
    an explicit ``max``, at most ``INT_LIMIT``."""

    def __init__(self, min: int | None = None, max: int | None = None) -> None:
        self.min, self.max = min, max

    def coerce(self, name: str, value: Any) -> int:
        number = _number(name, value, "an integer")
        if not math.isfinite(number) or number != int(number):
            raise OptionError(f"option {name} must be a whole number, got {value!r}")
        if self.max is None and abs(number) > INT_LIMIT:
            raise OptionError(
                f"option {name} is too large, got {_digits(value)} (at most {INT_LIMIT})"
            )
        _check_bounds(name, number, self.min, self.max, False, False)
        return int(number)

    def parse(self, name: str, text: str) -> int:
        if re.fullmatch(r"\s*[+-]?[0-9]+\s*", text) is None:
            return self.coerce(name, _parse_number(name, text))
        if len(text.strip()) > 20:  # beyond every bound (and int()'s own digit limit)
            raise OptionError(f"option {name} is too large, got {_digits(text.strip())}")
        return self.coerce(name, int(text))  # read exactly: shown as written

    def describe(self) -> str:
        return " ".join(["int", _bounds(self.min, self.max, False, False)]).strip()


class Float(Kind):
    """A finite real number (ints accepted), optionally bounded; ``nonzero`` excludes 0."""

    def __init__(
        self,
        min: float | None = None,
        max: float | None = None,
        *,
        min_open: bool = False,
        max_open: bool = False,
        nonzero: bool = False,
    ) -> None:
        self.min, self.max, self.min_open, self.max_open = min, max, min_open, max_open
        self.nonzero = nonzero

    def coerce(self, name: str, value: Any) -> float:
        number = _number(name, value, "a number")
        if not math.isfinite(number):
            raise OptionError(f"option {name} must be finite, got {number}")
        if abs(number) > FLOAT32_MAX:  # the attacks compute in float32: it would become inf
            raise OptionError(f"option {name} is too large for float32, got {number:g}")
        _check_bounds(name, number, self.min, self.max, self.min_open, self.max_open)
        if self.nonzero and number == 0:
            raise OptionError(f"option {name} must be non-zero")
        return number

    def parse(self, name: str, text: str) -> float:
        return self.coerce(name, _parse_number(name, text))

    def describe(self) -> str:
        bounds = _bounds(self.min, self.max, self.min_open, self.max_open)
        return " ".join(["float", bounds, "non-zero" if self.nonzero else ""]).strip()


class Bool(Kind):
    """True or False (numpy bools and the ints 0 and 1 accepted); the command line also reads
    true/false/yes/no/1/0."""

    WORDS = {"true": True, "false": False, "1": True, "0": False, "yes": True, "no": False}

    def coerce(self, name: str, value: Any) -> bool:
        if isinstance(value, torch.Tensor) and value.dim() == 0 and not value.is_floating_point():
            value = value.item()
        if type(value).__name__ in ("bool", "bool_"):
            return bool(value)
        if isinstance(value, numbers.Integral) and value in (0, 1):
            return bool(value)
        raise OptionError(f"option {name} must be True or False, got {value!r}")

    def parse(self, name: str, text: str) -> bool:
        if text.lower() not in self.WORDS:
            raise OptionError(f"option {name} must be true or false, got {text!r}")
        return self.WORDS[text.lower()]

    def describe(self) -> str:
        return "bool"


class Choice(Kind):
    """One of a few strings."""

    def __init__(self, *values: str) -> None:
        self.values = values

    def coerce(self, name: str, value: Any) -> str:
        if value not in self.values:
            raise OptionError(
                f"option {name} must be one of {', '.join(map(repr, self.values))}, got {value!r}"
            )
        return str(value)

    def describe(self) -> str:
        return " | ".join(map(repr, self.values))


class Text(Kind):
    """A non-empty string (e.g. a layer name)."""

    def coerce(self, name: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise OptionError(f"option {name} must be a non-empty string, got {value!r}")
        return value

    def describe(self) -> str:
        return "str"


class Budget(Float):
    """A float >= 0, or a per-image tensor (N,) of them (stored on the CPU as float32)."""

    def __init__(self) -> None:
        super().__init__(min=0.0)

    def coerce(self, name: str, value: Any) -> Any:  # float or tensor
        if isinstance(value, torch.Tensor) and value.dim() > 0:
            value = value.detach().to("cpu", torch.float32)
            bad = (~torch.isfinite(value) | (value < 0)).nonzero()
            if value.dim() != 1 or len(bad):
                got = (
                    f"shape {tuple(value.shape)}"
                    if value.dim() != 1
                    else f"{value[bad[0, 0]].item():g} at index {bad[0, 0].item()}"
                )
                raise OptionError(
                    f"option {name} as a tensor must have shape (N,) with finite "
                    f"values >= 0, got {got}"
                )
            return value
        return super().coerce(name, value)

    def describe(self) -> str:
        return "float >= 0 or tensor (N,)"


class Floats(Float):
    """One positive float or a sequence of them (e.g. one per channel); stored as a float or a
    tuple of floats. The command line reads ``255`` or ``4,4.5,5``."""

    def __init__(self) -> None:
        super().__init__(min=0.0, min_open=True)

    def coerce(self, name: str, value: Any) -> Any:  # float or tuple of floats
        if isinstance(value, (torch.Tensor, np.ndarray)) and value.ndim > 0:
            value = value.flatten().tolist()
        if isinstance(value, Sequence) and not isinstance(value, str):
            if not value:
                raise OptionError(f"option {name} must not be empty")
            return tuple(super(Floats, self).coerce(name, v) for v in value)
        return super().coerce(name, value)

    def parse(self, name: str, text: str) -> Any:
        values = [_parse_number(name, t) for t in text.split(",")]
        return self.coerce(name, values[0] if len(values) == 1 else values)

    def describe(self) -> str:
        return "float > 0 or a sequence of them"


class Optional(Kind):
    """None, or a value of ``inner``; the command line reads ``none``."""

    def __init__(self, inner: Kind) -> None:
        self.inner = inner

    def coerce(self, name: str, value: Any) -> Any:
        return None if value is None else self.inner.coerce(name, value)

    def parse(self, name: str, text: str) -> Any:
        return None if text.lower() == "none" else self.inner.parse(name, text)

    def describe(self) -> str:
        return f"{self.inner.describe()} or None"


class Instance(Kind):
    """An instance of ``cls`` (None gives ``cls()``, the default); not settable from text."""

    def __init__(self, cls: type) -> None:
        self.cls = cls

    def coerce(self, name: str, value: Any) -> Any:
        if value is None:
            return self.cls()
        if not isinstance(value, self.cls):
            raise OptionError(
                f"option {name} must be a {self.cls.__name__}, got {type(value).__name__}"
            )
        return value

    def parse(self, name: str, text: str) -> Any:
        raise OptionError(f"option {name} cannot be given as text")

    def describe(self) -> str:
        return self.cls.__name__


def _short(value: Any) -> str:
    """repr, with tensors shown by shape (per-image budgets can be long)."""
    if isinstance(value, torch.Tensor):
        return f"tensor(shape={tuple(value.shape)})"
    return repr(value)
