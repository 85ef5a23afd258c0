"""Plain JSON values from what the code holds (dataclasses, moments, money): the one converter, for the CLI's
`--json`, the outbox's payloads and the monthly tally's rows (whose content hash depends on it) alike."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from pydantic_core import to_jsonable_python

# values pydantic takes as they are: returned without a look inside (a month's tally has 100k+ rows)
_AS_THEY_ARE = frozenset((str, int, float, bool, type(None), Decimal))


def to_jsonable(value: Any) -> Any:
    """`value` as JSON values by pydantic's `to_jsonable_python` (dataclasses as objects, Decimal as its exact
    text, tuples and sets as lists, keys as text); a type pydantic does not know becomes its str()."""
    return to_jsonable_python(_iso_moments(value), fallback=str)


def _iso_moments(value: Any) -> Any:
    # moments as datetime.isoformat() before pydantic sees them: it writes UTC as "Z", and our JSON (scripts read
    # the CLI's, the tally's content hash covers its rows) has always said "+00:00"
    kind = type(value)
    if kind in _AS_THEY_ARE:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso_moments(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_iso_moments(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _iso_moments(getattr(value, name)) for name in _field_names(kind)}
    return value


@lru_cache(maxsize=None)
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))
