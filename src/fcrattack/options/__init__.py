"""Declared options: one typed declaration per option gives a class its keyword-only
constructor signature, the coercion and validation of every value (at construction and on
assignment), the ``Args:`` section of its docstring, and the command line's parsing and help.

    class PGD(GradientAttack):
        eps = Option(Budget(), 16 / 255, "Linf budget on [0, 1] pixels")

Kinds (small and composable): ``Int``, ``Float``, ``Bool``, ``Choice``,
``Text``, ``Budget`` (a float or a per-image tensor), ``Floats`` (one value or
one per channel), ``Optional`` (None allowed), ``Instance``. Every kind coerces what
a user naturally writes (an int where a float is meant, a whole-number float for a count,
numpy scalars) and rejects the rest, NaN and inf included, with the option's name in the
message.
"""

from .declared import Configurable, Option
from .kinds import (
    Bool,
    Budget,
    Choice,
    Float,
    Floats,
    Instance,
    Int,
    Kind,
    Optional,
    OptionError,
    Text,
)

__all__ = [
    "Bool",
    "Budget",
    "Choice",
    "Configurable",
    "Float",
    "Floats",
    "Instance",
    "Int",
    "Kind",
    "Option",
    "OptionError",
    "Optional",
    "Text",
]
