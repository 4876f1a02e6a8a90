"""Options shared by the command modules (`cli.py`, `*_commands.py`).

A module of its own so that each command module can import them at load
time without importing `nurture.cli`, which registers those modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ProjectDir = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="The nurture project folder (default: NURTURE_PROJECT_DIR, else the current folder).",
        show_default=False,
    ),
]
