"""(placeholder: commands of this area are registered here)."""
from __future__ import annotations

import typer


def register(root: typer.Typer, run: typer.Typer) -> None:
    """Add this module's commands to the root app and the `run` group."""
