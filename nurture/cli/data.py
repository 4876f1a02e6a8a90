"""The data commands: `nurture db upgrade|current`, `contacts import`, `events import`.

Registered on the main Typer app by `nurture.cli.app` (`register`); each is a
few lines over `nurture.store.db`, `nurture.lifecycle.importer` or `nurture.lifecycle.ingest`,
which the tests call directly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from nurture.cli.common import ProjectDir
from nurture.errors import NurtureError
from nurture.settings import get_settings


def register(app: typer.Typer, contacts_app: typer.Typer) -> None:
    import nurture.cli.common as cli

    db_app = typer.Typer(help="Database schema (alembic migrations).", no_args_is_help=True)
    app.add_typer(db_app, name="db")
    events_app = typer.Typer(help="Events: import.", no_args_is_help=True)
    app.add_typer(events_app, name="events")

    @db_app.command("upgrade")
    def db_upgrade(
        revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    ) -> None:
        """Apply the database migrations (alembic) up to REVISION."""
        from nurture.store import db

        with cli.reported():
            url = get_settings().database_url
            before = db.current_revision(url)
            db.upgrade(url, revision)
            after = db.current_revision(url)
            if before == after:
                cli.console.print(f"database already at {after}")
            else:
                cli.console.print(
                    f"[green]✓[/green] database upgraded: {before or 'empty'} → {after}"
                )

    @db_app.command("current")
    def db_current() -> None:
        """Print the database's migration revision and the newest one available."""
        from nurture.store import db

        with cli.reported():
            url = get_settings().database_url
            current, head = db.current_revision(url), db.head_revision()
            status = "up to date" if current == head else "run 'nurture db upgrade'"
            cli.console.print(f"current: {current or 'empty'}; head: {head} ({status})")

    @contacts_app.command("import")
    def contacts_import(
        file: Annotated[Path, typer.Argument(help="CSV (with a header row) or JSON Lines file.")],
        rejects: Annotated[
            Path | None,
            typer.Option(help="Write every refused row and warning here as file:line: reason."),
        ] = None,
        strict: Annotated[
            bool,
            typer.Option(
                "--strict", help="Refuse rows with a column neither standard nor declared."
            ),
        ] = False,
        project: ProjectDir = None,
    ) -> None:
        """Import contacts: upsert by email; bad rows are listed and skipped, good rows go in.

        Exits 0 when every row went in, 2 when some rows were rejected.
        """
        from nurture.lifecycle.importer import import_contacts

        with cli.reported():
            if not file.is_file():
                raise NurtureError(f"{file}: no such file")
            runtime = cli.open_runtime(project)
            config = runtime.project.config
            with _progress(f"importing {file.name}") as advance:
                report = import_contacts(
                    runtime.sessions,
                    file,
                    stages=config.stages,
                    properties=config.properties,
                    source=f"import:{file.name}",
                    on_progress=advance,
                    on_batch=cli.engine_for(runtime).on_import,
                    strict=strict,
                )
            _report_problems([str(p) for p in [*report.rejected, *report.warnings]], rejects)
            colour = "red" if report.rejected else "green"
            cli.console.print(
                f"{report.total} rows: [green]{report.created} created[/green], "
                f"{report.updated} updated, {report.unchanged} unchanged, "
                f"[{colour}]{len(report.rejected)} rejected[/{colour}]"
                + (f", {len(report.warnings)} warnings" if report.warnings else "")
            )
            if report.rejected:
                raise typer.Exit(2)

    @contacts_app.command("move")
    def contacts_move(
        email: Annotated[str, typer.Argument(help="The contact's email.")],
        stage: Annotated[str, typer.Argument(help="The stage to move it to (up or down).")],
        reason: Annotated[
            str | None, typer.Option(help="Why, for the stage history and `explain`.")
        ] = None,
        project: ProjectDir = None,
    ) -> None:
        """Move a contact to a stage by hand: the same path as a score or an import
        (history, stage.changed, the handoff at handoff.at, the new stage's workflows)."""
        import nurture.clock as clock
        from nurture.store.contacts import contact_by_email
        from nurture.store.handoffs import open_handoff_for

        with cli.reported():
            runtime = cli.open_runtime(project)
            config = runtime.project.config
            if stage not in config.stages:
                raise NurtureError(f"unknown stage {stage!r} (stages: {', '.join(config.stages)})")
            engine = cli.engine_for(runtime)
            with runtime.sessions.begin() as session:
                contact = contact_by_email(session, email)
                if contact is None:
                    raise NurtureError(f"no contact with email {email!r}")
                details = {"by": "cli"} | ({"reason": reason} if reason else {})
                now = clock.now()
                move = engine.lifecycle.stages.move(
                    session, contact, stage, "manual", now, details=details
                )
                if move is None:
                    cli.console.print(f"{contact.email} is already at {stage}: nothing to do")
                    return
                handoff = open_handoff_for(session, contact.id)
                cli.console.print(
                    f"[green]✓[/green] {contact.email}: {move.from_stage} → {move.to_stage}"
                )
                if handoff is not None and handoff.created_at == now:
                    cli.console.print(
                        f"  handed to sales: handoff #{handoff.id}, owner {handoff.owner or '—'}"
                    )

    @events_app.command("import")
    def events_import(
        file: Annotated[
            Path, typer.Argument(help="JSON Lines: one event object per line (SPEC §5).")
        ],
        rejects: Annotated[
            Path | None,
            typer.Option(help="Write every refused line here as file:line: reason."),
        ] = None,
        project: ProjectDir = None,
    ) -> None:
        """Record events (idempotent by id): scores, stages and waiting workflows follow.

        Read a line at a time; bad lines are listed as file:line: reason and
        skipped while good ones go in; exits 2 if any were.
        """
        from nurture.lifecycle.event_import import import_events

        with cli.reported():
            if not file.is_file():
                raise NurtureError(f"{file}: no such file")
            runtime = cli.open_runtime(project)
            ingestor = cli.engine_for(runtime).lifecycle.ingestor
            size = file.stat().st_size
            with _progress(f"importing {file.name}") as advance:
                report = import_events(
                    ingestor, runtime.sessions, file, on_progress=lambda n: advance(n, size)
                )
                advance(size, size)
            _report_problems([str(p) for p in report.problems], rejects)
            refused = report.rejected
            cli.console.print(
                f"[green]{report.recorded} recorded[/green], {report.duplicate} duplicates "
                f"(already recorded), {'[red]' if refused else ''}{refused} "
                f"rejected{'[/red]' if refused else ''}"
            )
            if refused:
                raise typer.Exit(2)


#: Refused rows listed on the terminal; the rest go to `--rejects FILE`.
SHOWN_PROBLEMS = 50


def _report_problems(problems: list[str], rejects: Path | None) -> None:
    """The first problems on stdout; every one in `rejects` if given (and said so)."""
    for problem in problems[:SHOWN_PROBLEMS]:
        typer.echo(problem)
    if rejects is not None and problems:
        rejects.write_text("\n".join(problems) + "\n", encoding="utf-8")
    hidden = len(problems) - SHOWN_PROBLEMS
    if hidden > 0:
        where = f"all in {rejects}" if rejects else "--rejects FILE lists them all"
        typer.echo(f"… and {hidden} more ({where})")
    elif rejects is not None and problems:
        typer.echo(f"(written to {rejects} too)")


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while a file imports; nothing when stderr is not a terminal."""
    from nurture.cli.common import errors

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=not sys.stderr.isatty(),
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task(label, total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total or None)

        yield advance
