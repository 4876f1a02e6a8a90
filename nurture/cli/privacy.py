"""The suppression list and GDPR commands: `nurture suppress`, `unsuppress`,
`suppressions list`, `contacts export`, `contacts erase`.

Registered on the main Typer app by `nurture.cli.app` (`register`), like the web
commands; each is a few lines over `nurture.delivery.suppression` and `nurture.tools.privacy`,
which the tests call directly.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from nurture.cli.common import ProjectDir


def register(app: typer.Typer, contacts_app: typer.Typer) -> None:
    import nurture.cli.common as cli

    suppressions_app = typer.Typer(
        help="The suppression list: addresses never emailed.", no_args_is_help=True
    )
    app.add_typer(suppressions_app, name="suppressions")

    @app.command()
    def suppress(
        email: Annotated[str, typer.Argument(help="The address never to email again.")],
        reason: Annotated[
            str | None, typer.Option("--reason", help="Why (kept with the entry).")
        ] = None,
        project: ProjectDir = None,
    ) -> None:
        """Put an address on the suppression list: its contact (now or later) gets no email."""
        import nurture.clock as clock
        import nurture.delivery.suppression as suppression
        from nurture.addresses import is_valid_email
        from nurture.store.contacts import contact_by_email

        address = suppression.normalise(email)
        if not is_valid_email(address):
            cli.fail(f"not an email address: {email!r}", 2)
        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                before = suppression.entry(session, address)
                existing = contact_by_email(session, address)
                stopped = existing is not None and existing.suppressed_at is not None
                contact = suppression.suppress(
                    session, address, "manual", clock.now(), note=reason, source="cli"
                )
            if before is not None and (contact is None or stopped):
                cli.console.print(f"{address} was already suppressed ({before.reason})")
                return
            what = "its workflows ended" if contact is not None else "no contact yet"
            cli.console.print(f"[green]✓[/green] {address} suppressed ({what})")

    @app.command()
    def unsuppress(
        email: Annotated[str, typer.Argument(help="The address to take off the list.")],
        project: ProjectDir = None,
    ) -> None:
        """Take an address off the suppression list (exit 1 if it was not on it)."""
        import nurture.delivery.suppression as suppression
        from nurture.store.contacts import contact_by_email

        address = suppression.normalise(email)
        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                before = suppression.entry(session, address)
                removed = suppression.lift(session, address)
                contact = contact_by_email(session, address)
                withdrawn = contact is not None and contact.consent_status == "withdrawn"
            if not removed:
                cli.fail(f"{address} is not suppressed")
            cli.console.print(f"[green]✓[/green] {address} is off the suppression list")
            if before is not None and before.reason == "erased":
                cli.console.print("[yellow]note: this address had been erased (GDPR)[/yellow]")
            if withdrawn:
                cli.console.print(
                    "[yellow]its consent is still withdrawn (unsubscribed): it gets no email "
                    "until the contact gives consent again[/yellow]"
                )

    @suppressions_app.command("list")
    def suppressions_list(
        reason: Annotated[
            str | None,
            typer.Option(help="Only this reason: bounced, complained, unsubscribed, …"),
        ] = None,
        json_output: Annotated[bool, typer.Option("--json", help="As JSON lines.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """Every suppressed address with its reason and since when (erased ones by hash)."""
        import nurture.delivery.suppression as suppression

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions() as session:
                entries = suppression.entries(session, reason)
            if json_output:
                for entry in entries:
                    line = {
                        "email": entry.email,
                        "email_sha256": entry.email_hash,
                        "reason": entry.reason,
                        "note": entry.note,
                        "source": entry.source,
                        "since": entry.created_at.isoformat(),
                    }
                    typer.echo(json.dumps(line, ensure_ascii=False))
                return
            table = Table(box=None, pad_edge=False)
            for column in ("address", "reason", "since", "source", "note"):
                table.add_column(column)
            for entry in entries:
                table.add_row(
                    entry.email or f"(erased) sha256:{entry.email_hash[:12]}…",
                    entry.reason,
                    f"{entry.created_at:%Y-%m-%d %H:%M}",
                    entry.source or "",
                    entry.note or "",
                )
            cli.console.print(table if entries else "no suppressed addresses")

    @contacts_app.command("export")
    def contacts_export(
        email: Annotated[str, typer.Argument(help="The person's address.")],
        out: Annotated[
            Path | None, typer.Option("--out", help="Write to this file (mode 600), not stdout.")
        ] = None,
        project: ProjectDir = None,
    ) -> None:
        """Everything held about a person, as JSON (GDPR access and portability)."""
        import nurture.clock as clock
        from nurture.tools.privacy import export_person

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions() as session:
                data = export_person(session, email, clock.now())
            text = json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n"
            if out is None:
                typer.echo(text, nl=False)
                return
            descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            cli.errors.print(f"[green]✓[/green] written to {out}")

    @contacts_app.command("erase")
    def contacts_erase(
        email: Annotated[str, typer.Argument(help="The person's address.")],
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """Erase a person's data (GDPR); anonymised rows and a hashed suppression stay.

        Reports still add up (stages, scores, send counts are kept) and a later
        import of the same address creates it suppressed: it is never emailed.
        """
        import nurture.clock as clock
        from nurture.tools.privacy import erase_person

        if not yes and not typer.confirm(f"Erase every personal data of {email}?"):
            raise typer.Exit(1)
        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions.begin() as session:
                done = erase_person(session, email, clock.now())
            if done.contact_id is None:
                cli.console.print(
                    f"no contact with email {email!r}; the address is suppressed (by hash)"
                )
                return
            cli.console.print(
                f"[green]✓[/green] contact #{done.contact_id} erased: {done.events} events, "
                f"{done.sends} sends, {done.handoffs} handoffs and {done.notifications} "
                f"notifications anonymised; {done.enrollments_ended} running workflows ended; "
                "the address stays suppressed (by hash)"
            )
