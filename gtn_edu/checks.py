"""Range checks for settings: one line each, naming the setting, the value given and what is allowed.

Every config (`GTNConfig`, `CartPoleConfig`) and the constructors that take numbers from
users (`UnrolledSGD`, `MetaTrainer`) check their arguments with these, so a bad value fails
where it is given instead of as a traceback many calls later. "Finite" is part of every
range: NaN passes no comparison, but infinity passes `> 0`, and an infinite learning rate
or clipping limit only fails once it has written NaN into the weights.

    >>> positive_float("outer_lr", 0.01)
    0.01
    >>> positive_float("outer_lr", float("inf"))
    Traceback (most recent call last):
    ValueError: outer_lr must be a finite number > 0, got inf
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

__all__ = ["positive_int", "nonnegative_int", "positive_float", "nonnegative_float", "unit_interval", "boolean",
           "one_of", "sizes", "balanced", "image_shape", "value_range", "registrar", "registered", "renamed"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(name: str, what: str, value) -> ValueError:
    return ValueError(f"{name} must be {what}, got {value!r}")


def positive_int(name: str, value) -> int:
    """`value` if it is an integer >= 1 (not a bool), else ValueError."""
    if not (_is_int(value) and value >= 1):
        raise _fail(name, "a positive integer", value)
    return value


def nonnegative_int(name: str, value) -> int:
    """`value` if it is an integer >= 0 (not a bool), else ValueError."""
    if not (_is_int(value) and value >= 0):
        raise _fail(name, "an integer >= 0", value)
    return value


def positive_float(name: str, value) -> float:
    """`value` if it is a finite number > 0, else ValueError."""
    if not (_is_real(value) and value > 0):
        raise _fail(name, "a finite number > 0", value)
    return value


def nonnegative_float(name: str, value) -> float:
    """`value` if it is a finite number >= 0, else ValueError."""
    if not (_is_real(value) and value >= 0):
        raise _fail(name, "a finite number >= 0", value)
    return value


def unit_interval(name: str, value, *, low_open: bool = True, high_open: bool = True) -> float:
    """`value` if it lies in the unit interval, (0, 1) by default ([0, ...) or (..., 1] when not open)."""
    ok = _is_real(value) and (value > 0 if low_open else value >= 0) and (value < 1 if high_open else value <= 1)
    if not ok:
        raise _fail(name, f"a number in {'(' if low_open else '['}0, 1{')' if high_open else ']'}", value)
    return value


def boolean(name: str, value) -> bool:
    """`value` if it is True or False, else ValueError."""
    if not isinstance(value, bool):
        raise _fail(name, "True or False", value)
    return value


def one_of(name: str, value, choices: Sequence) -> object:
    """`value` if it is one of `choices`, else ValueError listing them."""
    if value not in choices:
        raise _fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value


def sizes(owner: str, flags: dict[str, object] | None = None, **values: object) -> None:
    """`positive_int` for each of `values` and `boolean` for each of `flags`, named `"{owner}: {name}"`."""
    for name, v in values.items():
        positive_int(f"{owner}: {name}", v)
    for name, v in (flags or {}).items():
        boolean(f"{owner}: {name}", v)


def balanced(batch_size: int, num_classes: int) -> None:
    """Raise ValueError, with a batch size that works, unless `batch_size` is a multiple of `num_classes`."""
    if batch_size % num_classes:
        fix = max(1, round(batch_size / num_classes)) * num_classes
        raise ValueError(f"batch_size={batch_size} is not a positive multiple of num_classes={num_classes}: "
                         f"labels are balanced per batch, so choose e.g. batch_size={fix}.")


def image_shape(owner: str, shape: object, multiple: int = 1) -> tuple[int, int, int]:
    """`shape` if it is (C, H, W): three positive ints, H and W multiples of `multiple`; else ValueError."""
    if not (isinstance(shape, Sequence) and len(shape) == 3 and all(type(v) is int and v >= 1 for v in shape)
            and shape[1] % multiple == shape[2] % multiple == 0):
        why = f" with H and W divisible by {multiple} (two x2 upsamplings from H/4)" if multiple > 1 else ""
        raise ValueError(f"{owner} needs image_shape (C, H, W): three positive integers{why}; got {shape!r}. "
                         "Pad or resize the data, e.g. to (1, 28, 28) or (3, 32, 32).")
    return tuple(shape)


def value_range(name: str, value: object, default: tuple[float, float] = (-1.0, 1.0)) -> tuple[float, float]:
    """`value` as (low, high) floats (`default` for None); ValueError unless finite with low < high."""
    try:
        lo, hi = default if value is None else (math.nan if isinstance(v, (str, bool)) else float(v) for v in value)
    except (TypeError, ValueError):  # not two things, or not numbers
        lo = hi = math.nan
    if not -math.inf < lo < hi < math.inf:  # False for NaN too
        raise ValueError(f"{name} must be None or (low, high): two finite numbers with low < high, got {value!r}")
    return float(lo), float(hi)


def registrar(registry: dict, what: str, name: str, registry_name: str, wrap=None):
    """A decorator storing `wrap(fn)` (or `fn`) in `registry` under `name`; it returns `fn` unchanged.

    The registries of names (architecture spaces, curriculum variants, arm kinds, NAS
    operations) share it. ValueError for a name that is not a non-empty string, and, when the
    decorator runs, for a name already registered (naming how to replace it).
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"{what} names must be non-empty strings, got {name!r}")

    def add(fn):
        if name in registry:
            raise ValueError(f"{what} {name!r} is already registered; pick another name, or "
                             f"`del {registry_name}[{name!r}]` first to replace it")
        registry[name] = fn if wrap is None else wrap(fn)
        return fn

    return add


def registered(name: str, value: str, registry: dict, register: str) -> str:
    """`one_of` the names in `registry`, read when called; the error says how to add one with `register`."""
    try:
        return one_of(name, value, tuple(registry))
    except ValueError as err:
        raise ValueError(f"{err}; to add one, register it with {register}") from None


def renamed(where: str, old: str, old_value, new: str, new_value):
    """`new_value`, or `old_value` given under the keyword's old name `old` (a DeprecationWarning naming `new`).

    ValueError when both are given. `where` names the callable, e.g. "UnrolledSGD".
    """
    if old_value is None:
        return new_value
    if new_value is not None:
        raise ValueError(f"{old} is the old name of {new}; give only {new}")
    warnings.warn(f"{where}({old}=...) is now {where}({new}=...)", DeprecationWarning, stacklevel=3)
    return old_value


UNROLL_MODES = ("full", "recompute")
"""How `UnrolledSGD.unroll` gets the meta-gradient: one autograd graph, or stored states recomputed."""
OLD_MODE_NAMES = {"checkpoint": "recompute"}
"""Mode names before issue 24: "checkpoint" now names only a saved training run."""


def unroll_mode(mode: str, *, warn: bool = True) -> str:
    """`mode` checked against `UNROLL_MODES`; an old name is mapped to its new one (a DeprecationWarning if `warn`).

    Configs read from files map old names silently (`warn=False`): the user did not write them.
    """
    if isinstance(mode, str) and mode in OLD_MODE_NAMES:
        if warn:
            warnings.warn(f"mode={mode!r} is now mode={OLD_MODE_NAMES[mode]!r} (\"checkpoint\" names a saved run)",
                          DeprecationWarning, stacklevel=3)
        return OLD_MODE_NAMES[mode]
    return one_of("mode", mode, UNROLL_MODES)


def upgraded_config(d: dict) -> dict:
    """A config dict read from a file, with old value names mapped to today's (no warning: the file said them)."""
    if isinstance(d.get("mode"), str) and d["mode"] in OLD_MODE_NAMES:
        return {**d, "mode": OLD_MODE_NAMES[d["mode"]]}
    return d

