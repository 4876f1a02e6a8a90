"""`nurture init DIR`: a new, valid project to start from.

The files live as package data under `nurture/_scaffold/` (they ship in the
wheel): a French nurture.yaml (stages, scoring, handoff, sending rules), one
workflow for leads, the layout and two emails, the sales templates the handoff
needs, a workflow test on `nurture.testing`, sample contacts, a README for
the marketing team and a `.gitignore` (the signing key, the SQLite files, the
outbox: what must never be committed).
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.common import shell_command
from nurture.errors import NurtureError

SCAFFOLD = Path(__file__).parents[1] / "_scaffold"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the starter project into `directory`; the files written, relative to it."""
    if directory.exists() and not directory.is_dir():
        raise NurtureError(f"{directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not force:
        raise NurtureError(f"{directory} is not empty (use --force to write into it anyway)")
    shutil.copytree(SCAFFOLD, directory, ignore=_IGNORED, dirs_exist_ok=True)
    return sorted(
        path.relative_to(SCAFFOLD)
        for path in SCAFFOLD.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def next_steps(directory: Path) -> str:
    """The commands to run next, as this shell will find them.

    `nurture` and `pytest` live in the environment nurture was installed in,
    which need not be on PATH (a venv not activated): then they are named by
    their full path, so the hint works when pasted as printed.
    """
    steps = [f"cd {shlex.quote(str(directory))}", f"{shell_command('nurture')} validate"]
    if importlib.util.find_spec("pytest") is None:
        steps.append(f"{shell_command('pip')} install pytest")
    steps.append(f"{shell_command('pytest')} tests")
    return " && ".join(steps)


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    @app.command()
    def init(
        directory: Annotated[Path, typer.Argument(help="The folder to create.")],
        force: Annotated[
            bool, typer.Option("--force", help="Write into a folder that is not empty.")
        ] = False,
    ) -> None:
        """Create a new nurture project: config, a workflow, templates, a test, a README."""
        with cli.reported():
            written = scaffold(directory, force=force)
        for path in written:
            cli.console.print(f"  [green]+[/green] {path.as_posix()}")
        cli.console.print(f"\n[green]✓[/green] nurture project created in {directory}")
        cli.console.print(f"  next: {next_steps(directory)}", soft_wrap=True, markup=False)
