"""What every command module shares: consoles, error reporting, the project and engine.

Public on purpose (`nurture.cli.common`): command modules import these at load
time, and none of them imports `nurture.cli.app`, which registers them all, so
the command package has no circle.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from nurture.errors import ConfigurationError, DefinitionError, NurtureError, Problem
from nurture.settings import Settings, get_settings

if TYPE_CHECKING:
    from nurture.engine.runtime import Runtime
    from nurture.engine.service import Engine

ProjectDir = Annotated[
    Path | None,
    typer.Option(
        "--project",
        "-p",
        help="The nurture project folder (default: NURTURE_PROJECT_DIR, else the current folder).",
        show_default=False,
    ),
]

#: The width of output that is not a terminal's (a pipe, a file): wide enough that no
#: line is cut or wrapped (rich falls back to 80 columns there: `anne.mart…`).
UNBOUNDED = 100_000


def _console(*, stderr: bool) -> Console:
    """A console whose lines are never cut when piped (a terminal's width, else COLUMNS)."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not (stream is not None and stream.isatty()) and not os.environ.get("COLUMNS")
    return Console(stderr=stderr, highlight=False, width=UNBOUNDED if piped else None)


console = _console(stderr=False)
errors = _console(stderr=True)


def fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reported() -> Iterator[None]:
    """Turn our exceptions into a message and an exit code, never a traceback."""
    try:
        yield
    except DefinitionError as exc:
        print_problems(exc.problems)
        raise typer.Exit(1) from None
    except ConfigurationError as exc:
        fail(f"configuration: {exc}", 78)
    except NurtureError as exc:
        fail(str(exc))


def print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(str(problem))
    count = len(problems)
    errors.print(f"[red]{count} problem{'s' if count != 1 else ''}[/red]")


def project_dir(project: Path | None) -> Path:
    return project if project is not None else get_settings().project_dir


def engine_for(runtime: Runtime) -> Engine:
    """An engine for commands that change contacts but send nothing."""
    from nurture.engine.runtime import settle_heap
    from nurture.engine.service import Engine

    engine = Engine(runtime.project, runtime.sessions)
    settle_heap()  # an import of many rows follows
    return engine


def open_runtime(project: Path | None) -> Runtime:
    from nurture.engine.runtime import Runtime

    return Runtime(get_settings(), project_dir(project))


def settings_for(project: Path | None) -> Settings:
    import os

    if project is not None:
        os.environ["NURTURE_PROJECT_DIR"] = str(project)
        get_settings.cache_clear()
    return get_settings()


def shell_command(name: str) -> str:
    """How a shell here runs `name` from the environment nurture is installed in: by name
    when PATH finds that one, else by its full path (a venv not activated), so a
    command printed for people to paste works as printed."""
    import shlex
    import shutil

    mine = Path(sys.executable).parent / name
    found = shutil.which(name)
    if found is not None and Path(found).absolute() == mine.absolute():
        return name
    return shlex.quote(str(mine)) if mine.exists() else name


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def configure_logging() -> None:
    """Rich lines for people, or one JSON object per line (`NURTURE_LOG_FORMAT=json`)."""
    from rich.logging import RichHandler

    from nurture.logs import configure

    configure(get_settings().log_format, text_handler=RichHandler(console=errors, show_path=False))
