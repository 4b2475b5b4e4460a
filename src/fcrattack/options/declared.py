"""Declared options: ``Option`` (a class attribute with a kind, a default and a one-line
meaning) and ``Configurable`` (the base that turns the declarations into a keyword-only
constructor, its signature and the ``Args:`` section of the docstring)."""

from __future__ import annotations

import difflib
import inspect
import warnings
from typing import Any, ClassVar, overload

from .kinds import Kind, OptionError, _short


class Option:
    """A declared option: a class attribute with a kind, a default and a one-line meaning.

    On an instance it reads as the stored value; assigning coerces and validates it.
    """

    def __init__(self, kind: Kind, default: Any, doc: str) -> None:
        self.kind, self.doc = kind, doc
        self.name = ""
        self.default = self.shown = default  # shown: as declared, for signatures and help

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name
        self.default = self.kind.coerce(name, self.default)  # defaults are checked once

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Option: ...

    @overload
    def __get__(self, obj: object, objtype: type | None = None) -> Any: ...

    def __get__(self, obj: object | None, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return obj.__dict__.get(self.name, self.default)

    def __set__(self, obj: object, value: Any) -> None:
        new = self.kind.coerce(self.name, value)
        missing = object()
        old = obj.__dict__.get(self.name, missing)
        obj.__dict__[self.name] = new
        if getattr(obj, "_configured", False):  # a later assignment: recheck combinations
            try:
                obj.check()  # type: ignore[attr-defined]
            except Exception:
                if old is missing:
                    del obj.__dict__[self.name]
                else:
                    obj.__dict__[self.name] = old
                raise

    def replace(self, default: Any, doc: str | None = None) -> Option:
        """The same option with another default (and doc), for a subclass."""
        return Option(self.kind, default, self.doc if doc is None else doc)

    def parse(self, text: str) -> Any:
        """The value of command-line text ``text``."""
        return self.kind.parse(self.name, text.strip())

    def help(self) -> str:
        """``name (kind, default ...): doc``, as in the docstrings."""
        return f"{self.name} ({self.kind.describe()}, default {_short(self.shown)}): {self.doc}"


class Configurable:
    """Base of classes configured by declared ``Option`` attributes.

    A subclass gets a constructor taking every option as a keyword (unknown keywords are an
    error listing the valid ones), an ``inspect.signature`` that shows them, an ``Args:``
    section appended to its docstring, ``options`` and ``option_values``. The most
    derived declaration of a name wins; a plain class attribute of the same name hides an
    inherited option (e.g. FGSM's fixed ``steps = 1``). ``check`` validates combinations.
    """

    _options: ClassVar[dict[str, Option]] = {}
    #: old option names still accepted (old -> new), with a ``FutureWarning``
    RENAMED: ClassVar[dict[str, str]] = {}
    #: positional parameters of the constructor shown before the options
    _positional: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: dict[str, Option] = {}
        hidden: set[str] = set()
        for klass in cls.__mro__:
            for name, value in vars(klass).items():
                if name in found or name in hidden or name.startswith("_"):
                    continue
                if isinstance(value, Option):
                    found[name] = value
                elif klass is not object:
                    hidden.add(name)
        cls._options = found
        params = [inspect.Parameter(p, inspect.Parameter.POSITIONAL_ONLY) for p in cls._positional]
        params += [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt.shown)
            for name, opt in found.items()
        ]
        cls.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        if found and cls.__dict__.get("__doc__"):
            lines = "\n".join(f"    {opt.help()}" for opt in found.values())
            cls.__doc__ = cls._describe() + "\n\nArgs:\n" + lines

    @classmethod
    def _describe(cls) -> str:
        """The text of the docstring above its ``Args:`` section."""
        return inspect.cleandoc(cls.__doc__ or "")

    def __init__(self, **options: Any) -> None:
        self.configure(options)

    @classmethod
    def current_names(cls, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with old names (``RENAMED``) replaced by the current ones, warning once
        per old name; an option given under both names is refused."""
        out = dict(options)
        for old, new in cls.RENAMED.items():
            if old in out:
                if new in out:
                    raise OptionError(f"{cls.__name__}: give {new} or its old name {old}, not both")
                warnings.warn(
                    f"{cls.__name__}: option {old} is now called {new}",
                    FutureWarning,
                    stacklevel=4,
                )
                out[new] = out.pop(old)
        return out

    def configure(self, options: dict[str, Any]) -> None:
        """Set ``options`` (name -> value; old names of ``RENAMED`` accepted), then ``check``
        the whole configuration."""
        options = self.current_names(options)
        unknown = sorted(set(options) - set(self._options))
        if unknown:
            raise OptionError(
                f"{type(self).__name__} got unknown option(s) {', '.join(unknown)}; "
                f"valid: {', '.join(self._options)}"
            )
        object.__setattr__(self, "_configured", False)
        for name, value in options.items():
            setattr(self, name, value)
        self.check()
        object.__setattr__(self, "_configured", True)

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute; once configured, a public name that is neither an option nor an
        attribute already set (a typo: ``atk.stpes = 10``) is an AttributeError naming the
        options, and an old option name sets the new one."""
        if not name.startswith("_") and getattr(self, "_configured", False):
            if name in self.RENAMED:
                name = next(iter(self.current_names({name: value})))
            elif name not in self.__dict__ and not hasattr(type(self), name):
                close = difflib.get_close_matches(name, self._options, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise AttributeError(
                    f"{type(self).__name__} has no option {name!r}{hint} "
                    f"(options: {', '.join(self._options)})"
                )
        super().__setattr__(name, value)

    def check(self) -> None:
        """Validate combinations of options (single options are checked by their kind)."""

    @classmethod
    def options(cls) -> dict[str, Option]:
        """The declared options by name, in signature order."""
        return dict(cls._options)

    def option_values(self) -> dict[str, Any]:
        """Every option's current value."""
        return {name: getattr(self, name) for name in self._options}

    def __repr__(self) -> str:
        values = ", ".join(f"{k}={_short(v)}" for k, v in self.option_values().items())
        return f"{type(self).__name__}({values})"
