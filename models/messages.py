"""User-facing text of the domain layer, in zh_CN and en. Add a code here for every DomainError."""
from __future__ import annotations

MESSAGES: dict[str, tuple[str, str]] = {
    # code: (zh_CN, en)
    "not_found": ("找不到{what}:{ref}", "No {what_en} {ref}"),
    "bad_time": ("时间格式不对:{value}(应为 ISO 格式,如 2026-10-03T14:05)",
                 "Malformed time {value!r}: use ISO format, e.g. 2026-10-03T14:05"),
    "bad_amount": ("金额格式不对:{value}", "Malformed amount {value!r}"),
}


def render(code: str, locale: str, **params) -> str:
    zh, en = MESSAGES.get(code, (code, code))
    template = en if locale == "en" else zh
    try:
        return template.format(**params)
    except (KeyError, IndexError):
        return f"{template} {params}"
