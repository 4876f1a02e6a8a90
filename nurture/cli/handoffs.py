"""The sales handoff commands: `nurture handoffs list`, `show`, `accept`,
`reject`, `reopen`, `digest`.

Registered on the main Typer app by `nurture.cli.app` (`register`); each is a few
lines over `nurture.lifecycle.handoff.actions`, which the tests call directly.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nurture.cli.common import ProjectDir


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    handoffs_app = typer.Typer(
        help="Sales handoffs: list, show, accept, reject, reopen, digest.", no_args_is_help=True
    )
    app.add_typer(handoffs_app, name="handoffs")

    @handoffs_app.command("list")
    def handoffs_list(
        status: Annotated[str | None, typer.Option(help="open, accepted or rejected.")] = None,
        owner: Annotated[str | None, typer.Option(help="Only this owner's.")] = None,
        project: ProjectDir = None,
    ) -> None:
        """Handoffs with score, temperature, owner and age against the SLA (the most
        urgent open ones first, then the latest decisions)."""
        import nurture.clock as clock
        import nurture.readable as readable
        from nurture.lifecycle.handoff import views
        from nurture.lifecycle.handoff.readers import timezone_for
        from nurture.store.handoffs import handoffs_with_contacts

        with cli.reported():
            runtime = cli.open_runtime(project)
            now = clock.now()
            with runtime.sessions() as session:
                rows = [
                    views.summary(handoff, contact, now)
                    for handoff, contact in handoffs_with_contacts(
                        session, status, owner, limit=10_000
                    )
                ]
                zone = timezone_for(session, runtime.project.config, None)
            table = Table(box=None, pad_edge=False)
            for column in ("#", "contact", "company", "score", "temp.", "owner", "status", "age"):
                table.add_column(column)
            table.add_column("SLA")
            for row in rows:
                age = row["age_seconds"]
                sla = (
                    "[red]OVERDUE[/red]"
                    if row["overdue"]
                    else f"due {readable.local_time(row['sla_due_at'], zone, readable.CLI_LANGUAGE, now)}"
                    if row["sla_due_at"] and row["status"] == "open"
                    else ""
                )
                table.add_row(
                    str(row["id"]),
                    row["contact"]["email"],
                    row["contact"]["company"] or "",
                    readable.score(row["score"]),
                    row["temperature"] or "",
                    row["owner"] or "—",
                    row["status"],
                    f"{age // 86400}d {age % 86400 // 3600}h",
                    sla,
                )
            cli.console.print(table if rows else "no handoffs")
            if rows:
                cli.console.print(f"times in {zone}", style="dim")

    @handoffs_app.command("show")
    def handoffs_show(
        handoff_id: Annotated[int, typer.Argument(help="The handoff's number.")],
        json_output: Annotated[bool, typer.Option("--json", help="As JSON.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """Everything sales received: snapshot, score breakdown, timeline, last content, actions."""
        import nurture.clock as clock
        from nurture.lifecycle.handoff import views
        from nurture.lifecycle.handoff.readers import timezone_for

        with cli.reported():
            runtime = cli.open_runtime(project)
            now = clock.now()
            with runtime.sessions() as session:
                handoff = cli.engine_for(runtime).handoffs.get(session, handoff_id)
                data = views.detail(session, runtime.project.config, handoff, now)
                zone = timezone_for(session, runtime.project.config, None)
            if json_output:
                typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
                return
            _print_detail(data, zone, now)

    def _print_detail(data: dict[str, Any], zone: str, now: datetime) -> None:
        """`handoffs show` for people: rounded scores, local times (`nurture.readable`)."""
        import nurture.readable as readable

        def when(value: str | None) -> str:
            return readable.local_time(value, zone, readable.CLI_LANGUAGE, now)

        snap = data["snapshot"]
        contact = snap.get("contact", {})
        cli.console.print(
            f"[bold]Handoff #{data['id']}[/bold] {data['status']} · owner {data['owner'] or '—'}"
            f" · SLA {readable.local_time_from_now(data['sla_due_at'], zone, readable.CLI_LANGUAGE, now) or '—'}"
        )
        cli.console.print(
            f"{contact.get('name') or ''} <{contact.get('email')}> {contact.get('company') or ''}"
        )
        score = snap.get("score", {})
        cli.console.print(
            f"score {readable.score_breakdown(score.get('total'), score.get('fit'))}"
            f" · {snap.get('temperature') or '—'}"
        )
        last = snap.get("last_content")
        if last:
            cli.console.print(
                f"last content: {last.get('title') or last.get('url')} ({when(last.get('at'))})",
                markup=False,
            )
        cli.console.print("\n[bold]Timeline[/bold]")
        for item in snap.get("timeline", [])[:20]:
            cli.console.print(
                f"  {when(item['at'])}  {item['type']}  {item.get('title') or item.get('url') or ''}",
                markup=False,
            )
        cli.console.print("\n[bold]Actions[/bold]")
        for action in data["actions"]:
            why = f" — {action['reason']}" if action.get("reason") else ""
            cli.console.print(
                f"  {when(action['at'])}  {action['action']} by {action['by']}{why}",
                markup=False,
            )
        cli.console.print(f"\ntimes in {zone}", style="dim")

    def _handoff_action(project: Path | None, action: str, handoff_id: int, **kwargs: Any) -> None:
        import nurture.clock as clock

        with cli.reported():
            runtime = cli.open_runtime(project)
            engine = cli.engine_for(runtime)
            with runtime.sessions.begin() as session:
                handoff = getattr(engine.handoffs, action)(
                    session, handoff_id, now=clock.now(), **kwargs
                )
                status = handoff.status
            cli.console.print(f"[green]✓[/green] handoff #{handoff_id} is now {status}")

    @handoffs_app.command("accept")
    def handoffs_accept(
        handoff_id: Annotated[int, typer.Argument()],
        by: Annotated[str, typer.Option(help="Who accepts (kept in the history).")] = "cli",
        project: ProjectDir = None,
    ) -> None:
        """Accept a handoff: the contact moves to `handoff.on_accept.stage`, if any."""
        _handoff_action(project, "accept", handoff_id, by=by)

    @handoffs_app.command("reject")
    def handoffs_reject(
        handoff_id: Annotated[int, typer.Argument()],
        reason: Annotated[str, typer.Option(help="Why it goes back to nurturing (required).")],
        by: Annotated[str, typer.Option(help="Who rejects (kept in the history).")] = "cli",
        project: ProjectDir = None,
    ) -> None:
        """Send back to nurturing: stage, score and workflow as `handoff.on_reject` says."""
        _handoff_action(project, "reject", handoff_id, by=by, reason=reason)

    @handoffs_app.command("reopen")
    def handoffs_reopen(
        handoff_id: Annotated[int, typer.Argument()],
        by: Annotated[str, typer.Option(help="Who reopens.")] = "cli",
        project: ProjectDir = None,
    ) -> None:
        """Reopen a rejected handoff: the contact goes back to the handoff stage."""
        _handoff_action(project, "reopen", handoff_id, by=by)

    @handoffs_app.command("digest")
    def handoffs_digest(
        days: Annotated[int, typer.Option(help="How far back.")] = 7,
        csv_file: Annotated[
            Path | None, typer.Option("--csv", help="Write the digest as CSV.")
        ] = None,
        send: Annotated[bool, typer.Option(help="Email each owner their digest now.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """The week's qualified leads per owner: score, history, last content (also sent on
        Mondays at 08:00 by the scheduler)."""
        import csv
        from datetime import timedelta

        import nurture.clock as clock
        import nurture.readable as readable
        from nurture.lifecycle.handoff.readers import timezone_for

        with cli.reported():
            runtime = cli.open_runtime(project)
            now = clock.now()
            engine = cli.engine_for(runtime)
            with runtime.sessions() as session:
                report = engine.handoffs.digest(session, now - timedelta(days=days), now)
                zone = timezone_for(session, runtime.project.config, None)
            for owner, leads in report.items():
                cli.console.print(f"\n[bold]{owner}[/bold] — {len(leads)} lead(s)")
                for lead in leads:
                    flag = " [red]OVERDUE[/red]" if lead["overdue"] else ""
                    cli.console.print(
                        f"  #{lead['handoff']} {lead['email']} {lead['company'] or ''} · "
                        f"{readable.score(lead['score'])} · {lead['status']}{flag} · {lead['history']}"
                        f" · {lead['last_content'] or '—'}"
                    )
            if not report:
                cli.console.print("no handoffs in that period")
            if csv_file is not None:
                with csv_file.open("w", newline="", encoding="utf-8") as handle:
                    fields = [
                        "owner",
                        "handoff",
                        "created_at",
                        "timezone",
                        "status",
                        "overdue",
                        "email",
                        "name",
                        "company",
                        "score",
                        "temperature",
                        "history",
                        "last_content",
                    ]
                    writer = csv.DictWriter(handle, fieldnames=fields)
                    writer.writeheader()
                    for owner, leads in report.items():
                        for lead in leads:
                            # For a spreadsheet and the people reading it: local time
                            # (sortable text), the score rounded as everywhere else.
                            writer.writerow(
                                {
                                    "owner": owner,
                                    **lead,
                                    "created_at": readable.stamp(lead["created_at"], zone),
                                    "timezone": zone,
                                    "score": ""
                                    if lead["score"] is None
                                    else readable.rounded(lead["score"]),
                                }
                            )
                cli.console.print(f"[green]✓[/green] wrote {csv_file}")
            if send:
                from nurture.engine.factory import build_engine
                from nurture.settings import get_settings

                sender = build_engine(get_settings())
                with sender.sessions.begin() as session:
                    sender.handoffs.queue_digests(session, now, days)
                delivered = sender.notifier.deliver()
                cli.console.print(f"[green]✓[/green] {delivered} digest email(s) sent")
