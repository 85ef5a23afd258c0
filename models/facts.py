"""Building many frozen facts quickly: a check can return hundreds of them per run."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from typing import TypeVar

_F = TypeVar("_F")


def maker(cls: type[_F]) -> Callable[..., _F]:
    """`cls(*values)` for a frozen dataclass given every field in order, without its generated __init__: that sets
    each field through object.__setattr__, ten times the cost of filling the instance's dict, and was the larger
    part of a check's Python time at a hundred findings. Same object, same equality; a missing value is refused."""
    names = tuple(f.name for f in fields(cls))  # type: ignore[arg-type]
    count = len(names)
    new = object.__new__

    def make(*values: object) -> _F:
        if len(values) != count:  # cheaper than zip(strict=True), which checks as it goes
            raise ValueError(f"{cls.__name__} takes {count} values, got {len(values)}")
        obj = new(cls)
        obj.__dict__.update(zip(names, values))
        return obj
    return make
