"""`nurture graph WORKFLOW`: a workflow's diagram, with live counts when it can.

Registered on the main Typer app by `nurture.cli.app` (`register`). The drawing is
`nurture.tools.graph`; this module only finds the workflow and, when a migrated
database is at hand, how many running enrollments stand on each step. The
graph is a reading tool, so a missing or old database never stops it: it
draws without counts and says why on stderr. It never creates or migrates a
database either (unlike commands that write contacts).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.common import ProjectDir
from nurture.errors import NurtureError
from nurture.settings import Settings
from nurture.tools.graph import Counts


class GraphFormat(StrEnum):
    """The `--format` choices of `nurture graph`: Mermaid source, a standalone SVG, an HTML page."""

    mermaid = "mermaid"
    svg = "svg"
    html = "html"


def live_counts(settings: Settings, workflow: str) -> tuple[Counts | None, str | None]:
    """Running enrollments per step, or None and the reason there are none."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from nurture.errors import DatabaseUnavailable
    from nurture.store import db
    from nurture.store.enrollments import running_enrollments_by_step

    url = settings.database_url
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        name = parsed.database
        if not name or name == ":memory:" or not Path(name).is_file():
            return None, f"no database at {url}"
    try:
        if db.current_revision(url) != db.head_revision():
            return None, "the database schema is not up to date (run 'nurture db upgrade')"
        engine = db.create_engine_for(url)
        try:
            with db.session_factory(engine)() as session:
                return running_enrollments_by_step(session, workflow), None
        finally:
            engine.dispose()
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        original = getattr(exc, "orig", None) or exc
        reason = (str(original).splitlines() or [type(exc).__name__])[0]
        return None, f"database unreachable ({reason})"


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    @app.command()
    def graph(
        workflow: Annotated[str, typer.Argument(help="The workflow's name.")],
        format: Annotated[
            GraphFormat, typer.Option("--format", "-f", help="mermaid, svg or html.")
        ] = GraphFormat.mermaid,
        out: Annotated[
            Path | None, typer.Option("--out", "-o", help="Write to this file, not stdout.")
        ] = None,
        project: ProjectDir = None,
        no_counts: Annotated[
            bool, typer.Option("--no-counts", help="Skip the live counts from the database.")
        ] = False,
    ) -> None:
        """Draw a workflow's steps, waits and branches (Mermaid, SVG or HTML), with live counts."""
        import nurture.tools.graph as drawing
        import nurture.tools.graph_svg as picture
        from nurture.definitions.loader import load_project
        from nurture.settings import get_settings

        with cli.reported():
            settings = get_settings()
            loaded = load_project(cli.project_dir(project))
            found = loaded.workflows.get(workflow)
            if found is None:
                names = ", ".join(sorted(loaded.workflows)) or "none"
                raise NurtureError(f"unknown workflow {workflow!r}; workflows: {names}")
            counts: Counts | None = None
            if not no_counts:
                counts, reason = live_counts(settings, found.name)
                if reason is not None:
                    cli.errors.print(f"no live counts: {reason}", soft_wrap=True)
            render = {"mermaid": drawing.mermaid, "svg": picture.svg, "html": picture.html}
            text = render[format.value](found, counts)
            if out is None:
                typer.echo(text, nl=False)
            else:
                out.write_text(text, encoding="utf-8")
                cli.errors.print(f"[green]✓[/green] {format.value} graph written to {out}")
