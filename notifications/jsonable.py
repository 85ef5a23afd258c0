"""Plain JSON values from what the code holds (dataclasses, moments, money): for the CLI's `--json` and the
outbox's payloads alike."""
from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from pydantic_core import to_jsonable_python


def to_jsonable(value: Any) -> Any:
    """`value` as JSON values by pydantic's `to_jsonable_python` (dataclasses as objects, Decimal as its exact
    text, tuples and sets as lists, keys as text); a type pydantic does not know becomes its str()."""
    return to_jsonable_python(_iso_moments(value), fallback=str)


def _iso_moments(value: Any) -> Any:
    # moments as datetime.isoformat() before pydantic sees them: it writes UTC as "Z", and our JSON (scripts read
    # the CLI's) has always said "+00:00"
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _iso_moments(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_iso_moments(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _iso_moments(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value
