"""Configuration dataclasses whose fields are declared once: type, range, help text.

A config is a frozen dataclass deriving from :class:`Settings` whose fields are made with :func:`setting`.
From that one declaration come the check on construction (type and range, one line that names the field
and the value), the values read from TOML (lists become tuples, integers become floats where a float is
declared), the round trip back to TOML and the text that documents each field (:func:`describe`). Checks
that relate several fields go in the class's ``check`` method.
"""

from __future__ import annotations

import math
import tomllib
import types
import typing
from dataclasses import MISSING, Field, dataclass, field, fields
from typing import Any, ClassVar, Literal

import tomli_w

from robopg.errors import ConfigError

_SETTING = "robopg.setting"


@dataclass(frozen=True)
class Bounds:
    """A field's help text and range; ``ge``/``gt``/``le``/``lt`` apply to each element of a tuple field."""

    help: str
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    nonempty: bool = False  # a tuple field must have at least one element
    most: float | None = None  # a cap on resources (memory, time) rather than a limit of the value's meaning

    def contains(self, value: float) -> bool:
        return ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
                and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))

    def within_cap(self, value: float) -> bool:
        return self.most is None or value <= self.most

    def text(self) -> str:
        """The range as a reader writes it: ``> 0``, ``in (0, 1]``, ``>= 1``."""
        low = high = None
        if self.ge is not None or self.gt is not None:
            low = f"[{_number(self.ge)}" if self.ge is not None else f"({_number(self.gt)}"
        if self.le is not None or self.lt is not None:
            high = f"{_number(self.le)}]" if self.le is not None else f"{_number(self.lt)})"
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if self.ge is not None else '>'} {low[1:]}"
        if high:
            return f"{'<=' if self.le is not None else '<'} {high[:-1]}"
        return ""


def _number(value: float) -> str:
    """Whole numbers in full (a seed's bound is 4294967295, not 4.29497e+09), others as %g."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def setting(default: Any, help: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
            lt: float | None = None, nonempty: bool = False, most: float | None = None) -> Any:
    """A config field: its default, what it means, its range, and a cap on what it may cost (``most``)."""
    return field(default=default, metadata={_SETTING: Bounds(help, ge, gt, le, lt, nonempty, most)})


class Settings:
    """Base of every config: checks each declared field on construction, then calls :meth:`check`."""

    label: ClassVar[str] = "config"  # how errors name this kind of config

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = _checked(f.name, hints[f.name], getattr(self, f.name), bounds_of(f))
            object.__setattr__(self, f.name, value)
        self.check()

    def check(self) -> None:
        """Checks that relate several fields; raise :class:`ConfigError` via :func:`require`."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def bounds_of(f: Field) -> Bounds:
    return f.metadata.get(_SETTING) or Bounds("")


def build(cls: type[Settings], values: dict[str, Any], label: str | None = None) -> Any:
    """``cls(**values)``, refusing unknown keys by name (a dataclass would raise a bare TypeError); errors call
    the config ``label`` (default: the class's)."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    require(not unknown, f"unknown {label or cls.label} key(s): {', '.join(unknown)}")
    return cls(**values)


def to_dict(config: Settings) -> dict[str, Any]:
    """The fields as TOML values (tuples as lists)."""
    return {f.name: _plain(getattr(config, f.name)) for f in fields(config)}  # type: ignore[arg-type]


def to_toml(values: dict[str, Any]) -> str:
    return tomli_w.dumps(values)


def parse_value(text: str) -> Any:
    """A value written on the command line, read as TOML reads one (``3e-4``, ``true``, ``[64, 64]``); a word
    that is no TOML value is text, so ``noise=ou`` needs no quotes."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(items: list[str], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` items (``--set`` on the command line) as a dict of values read by :func:`parse_value`."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        require(bool(sep and key.strip() and text.strip()), f"{option} takes KEY=VALUE (e.g. batch_size=64), "
                                                             f"got {item!r}")
        values[key.strip()] = parse_value(text.strip())
    return values


def describe(cls: type[Settings]) -> list[tuple[str, str, Any, str]]:
    """(name, type and range, default, help) of every field, for help texts and config templates."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in fields(cls):  # type: ignore[arg-type]
        bounds = bounds_of(f)
        kind = _type_text(hints[f.name]) + (f" {bounds.text()}" if bounds.text() else "") + (
            f", at most {_number(bounds.most)}" if bounds.most is not None else "")
        default = f.default if f.default is not MISSING else None
        rows.append((f.name, kind, _plain(default), bounds.help))
    return rows


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _type_text(hint: Any) -> str:
    if typing.get_origin(hint) is Literal:
        return " | ".join(repr(c) for c in typing.get_args(hint))
    if typing.get_origin(hint) is tuple:
        return f"list of {_type_text(typing.get_args(hint)[0])}"
    if _optional(hint) is not None:
        return f"{_type_text(_optional(hint))} or none"
    return {bool: "true/false", int: "integer", float: "number", str: "text"}.get(hint, str(hint))


def _optional(hint: Any) -> Any:
    """``X`` for ``X | None``, else None."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and len(args) == 2 and type(None) in args:
        return next(a for a in args if a is not type(None))
    return None


def _checked(name: str, hint: Any, value: Any, bounds: Bounds) -> Any:
    """``value`` checked against its declared type and range, and converted (list -> tuple, int -> float)."""
    inner = _optional(hint)
    if inner is not None:
        return None if value is None else _checked(name, inner, value, bounds)
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        require(value in choices, f"{name} must be {_either(choices)}, got {value!r}")
        return value
    if typing.get_origin(hint) is tuple:
        element = typing.get_args(hint)[0]
        noun = {int: "integers", float: "numbers", str: "texts"}[element]
        wanted = f"a {'non-empty ' if bounds.nonempty else ''}list of {noun} {bounds.text()}".rstrip()
        ok = isinstance(value, list | tuple) and (len(value) > 0 or not bounds.nonempty) and all(
            _is(element, v) and (element is str or bounds.contains(v)) for v in value)
        require(ok, f"{name} must be {wanted}, got {_plain(value)!r}")
        if element is not str:
            _check_cap(name, bounds, *value)
        return tuple(element(v) for v in value)
    if hint is bool:
        require(isinstance(value, bool), f"{name} must be true or false, got {value!r}")
        return value
    if hint is str:
        require(isinstance(value, str), f"{name} must be text, got {value!r}")
        return value
    if hint is int:
        require(_is(int, value), f"{name} must be an integer, got {value!r}")
        require(bounds.contains(value), f"{name} must be an integer {bounds.text()}, got {value!r}")
        _check_cap(name, bounds, value)
        return value
    if hint is float:
        require(_is(float, value), f"{name} must be a finite number, got {value!r}")
        require(bounds.contains(value), f"{name} must be {bounds.text()}, got {value!r}")
        _check_cap(name, bounds, value)
        return float(value)
    raise TypeError(f"{name}: settings of type {hint} are not supported")


def _either(choices: tuple[Any, ...]) -> str:
    """'a', 'b' or 'c'."""
    quoted = [repr(c) for c in choices]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def _check_cap(name: str, bounds: Bounds, *values: float) -> None:
    for value in values:
        if not bounds.within_cap(value):
            raise ConfigError(f"{name} must be at most {_number(bounds.most)}, got {value!r}")


def _is(kind: type, value: Any) -> bool:
    """An int is an int but not a bool; a float is any finite real number but not a bool."""
    if isinstance(value, bool):
        return False
    if kind is int:
        return isinstance(value, int)
    if kind is str:
        return isinstance(value, str)
    return isinstance(value, int | float) and math.isfinite(value)


__all__ = ["Bounds", "ConfigError", "Settings", "build", "describe", "parse_assignments", "parse_value", "require",
           "setting", "to_dict", "to_toml"]
