"""`nurture bounces read`: bounces and complaints from your own MTA's mailbox.

Registered on the main Typer app by `nurture.cli.app`; a few lines over
`nurture.lifecycle.bounce_reports.read_bounces`, which the tests call directly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nurture.cli.common import ProjectDir
from nurture.errors import ConfigurationError, NurtureError
from nurture.settings import get_settings

#: Messages left listed on the terminal; the count says how many more.
SHOWN_PROBLEMS = 50


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    bounces_app = typer.Typer(
        help="Bounces and complaints from your own MTA's mailbox.", no_args_is_help=True
    )
    app.add_typer(bounces_app, name="bounces")

    @bounces_app.command("read")
    def bounces_read(
        maildir: Annotated[
            Path | None, typer.Argument(help="A Maildir folder (with cur, new and tmp).")
        ] = None,
        imap: Annotated[
            bool,
            typer.Option("--imap", help="Read the IMAP folder of NURTURE_BOUNCES_IMAP_URL."),
        ] = False,
        delete: Annotated[
            bool,
            typer.Option(
                "--delete", help="Delete the messages dealt with instead of marking them seen."
            ),
        ] = False,
        project: ProjectDir = None,
    ) -> None:
        """Record the bounces (DSN) and complaints (ARF) of the unseen messages.

        Hard bounces and complaints suppress the address; soft bounces count
        towards sending.soft_bounce_limit. Messages dealt with are marked seen
        (or deleted with --delete); the others stay unseen and flagged, and are
        listed with the reason. Exits 2 if any were.
        """
        from nurture.delivery.mailboxes import Imap, Maildir, ReportMailbox
        from nurture.lifecycle.bounce_reports import read_bounces

        with cli.reported():
            if (maildir is None) != imap:
                raise NurtureError("give a MAILDIR folder or --imap (one of them)")
            mailbox: ReportMailbox
            if maildir is not None:
                mailbox, label = Maildir(maildir, delete=delete), str(maildir)
            runtime = cli.open_runtime(project)
            ingestor = cli.engine_for(runtime).lifecycle.ingestor
            if maildir is None:
                url = get_settings().bounces_imap_url
                if not url:
                    raise ConfigurationError("NURTURE_BOUNCES_IMAP_URL: required with --imap")
                mailbox = Imap(url, delete=delete)
                label = f"imap:{mailbox.folder}"
            try:
                reading = read_bounces(
                    ingestor,
                    runtime.sessions,
                    mailbox,
                    label=label,
                    return_path=runtime.project.config.sending.return_path,
                )
            finally:
                mailbox.close()
            for problem in reading.problems[:SHOWN_PROBLEMS]:
                typer.echo(str(problem))
            more = len(reading.problems) - SHOWN_PROBLEMS
            if more > 0:
                typer.echo(f"… and {more} more")
            left = len(reading.problems)
            recorded = ", ".join(
                (
                    _count(reading.hard, "hard bounce"),
                    _count(reading.soft, "soft bounce"),
                    _count(reading.complaints, "complaint"),
                )
            )
            cli.console.print(
                f"{_count(reading.read, 'message')}: [green]{recorded} recorded[/green], "
                f"{reading.duplicate} already recorded, "
                + (f"[red]{left} not matched (left unseen)[/red]" if left else "0 not matched")
            )
            if left:
                raise typer.Exit(2)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
