"""The key that signs session cookies and alert links: BIANMIN_SECRET_KEY, else one generated on first use.

A generated key is kept in the data folder (mode 0600) so that links sent yesterday still open after a restart.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flows.settings import Settings

KEY_FILE = "console-secret.key"


def key_path(settings: Settings) -> Path:
    return settings.data_dir / KEY_FILE


def secret_key(settings: Settings) -> str:
    """The signing key; generated atomically (O_EXCL, 0600) when neither the setting nor the file exists."""
    if settings.secret_key is not None and settings.secret_key.get_secret_value():
        return settings.secret_key.get_secret_value()
    path = key_path(settings)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process wrote it first: use theirs, or links would not verify
        return _read(path)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(key + "\n")
    return key


def _read(path: Path) -> str:
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise RuntimeError(f"{path} holds no usable key: delete it to have a new one generated")
    return key
