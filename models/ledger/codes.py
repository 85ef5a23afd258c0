"""The office code: declared once here, checked by the desk, the import and the report's folder names.

An office code names its reports' folder and file (`reports/<code>/<month>/...`) and is part of every number
(`R-<code>-...`), so it is a plain word matching OFFICE_CODE_PATTERN: a letter or digit, then at most 15
letters, digits, `_` or `-`. That leaves no `/`, `..`, absolute path, empty name, space, control character or
non-ASCII letter. A few words that match are still not folder names of their own: `group` is the group
report's folder, and Windows reserves CON, PRN, AUX, NUL, COM0-9 and LPT0-9 in any case (a report folder
copied to a share). Both are compared without case.
"""
from __future__ import annotations

import re

from models.errors import DomainError

OFFICE_CODE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_-]{0,15}"
_OFFICE_CODE = re.compile(OFFICE_CODE_PATTERN, re.ASCII)
RESERVED_OFFICE_CODES = frozenset({"group", "con", "prn", "aux", "nul",
                                   *(f"{port}{n}" for port in ("com", "lpt") for n in range(10))})


def is_office_code(value: object) -> bool:
    """Whether `value` is a well-formed office code (the whole string: `$` would let a trailing newline in)."""
    return (isinstance(value, str) and _OFFICE_CODE.fullmatch(value) is not None
            and value.lower() not in RESERVED_OFFICE_CODES)


def check_office_code(value: object) -> str:
    """`value` if it is a well-formed office code; else DomainError("bad_office_code")."""
    if not is_office_code(value):
        raise DomainError("bad_office_code", value=value, pattern=OFFICE_CODE_PATTERN)
    return value  # type: ignore[return-value]
