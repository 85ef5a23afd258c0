"""Regenerate the initial migration (0001) from the models. Until the first release there is one
schema revision; after it, add new revisions with `alembic revision --autogenerate` instead.

    python -m models.ledger.migrations.regenerate
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from alembic import command

from models.ledger.db import MIGRATIONS_DIR, alembic_config

VERSIONS = MIGRATIONS_DIR / "versions"


def main() -> None:
    for old in VERSIONS.glob("0001_*.py"):
        old.unlink()
    later = sorted(p for p in VERSIONS.glob("*.py") if not p.name.startswith("0001_"))
    with tempfile.TemporaryDirectory() as tmp:
        parked = Path(tmp) / "parked"
        parked.mkdir()
        for p in later:  # autogenerate needs the empty database to be "at head"
            shutil.move(p, parked / p.name)
        try:
            config = alembic_config(f"sqlite:///{tmp}/empty.db")
            command.revision(config, message="initial tables", autogenerate=True, rev_id="0001")
        finally:
            for p in parked.iterdir():
                shutil.move(p, VERSIONS / p.name)
    print("regenerated", *VERSIONS.glob("0001_*.py"))


if __name__ == "__main__":
    main()
