"""`nurture plan` and `nurture apply`: change live workflows knowing what happens to contacts.

Registered on the main Typer app by `nurture.cli.app` (`register`). Both print the
same plan (`nurture.tools.deploy.build_plan`), so what `plan` announces is what
`apply` does; `apply` asks before migrating anyone unless `--yes`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from nurture.cli.common import ProjectDir
from nurture.tools.deploy import Plan

Migrate = Annotated[
    bool,
    typer.Option(
        "--migrate",
        help="Move running enrollments to the new versions (same step id; see the plan).",
    ),
]


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    @app.command()
    def plan(
        migrate: Migrate = False,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """Compare the workflow files with what is deployed; say what happens to contacts."""
        from nurture.tools.deploy import build_plan

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions() as session:
                result = build_plan(session, runtime.project, migrate=migrate)
            if as_json:
                typer.echo(json.dumps(result.to_json(), ensure_ascii=False, indent=2))
            else:
                print_plan(result)

    @app.command()
    def apply(
        migrate: Migrate = False,
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """Deploy the workflow files; with --migrate, move running enrollments (one transaction)."""
        import nurture.clock as clock
        from nurture.tools.deploy import apply as apply_files
        from nurture.tools.deploy import build_plan

        with cli.reported():
            runtime = cli.open_runtime(project)
            with runtime.sessions() as session:
                preview = build_plan(session, runtime.project, migrate=migrate)
            print_plan(preview)
            if not preview.has_changes:
                return
            moving = sum(g.count for w in preview.workflows for g in w.groups) if migrate else 0
            at_once = sum(g.count for _, g in preview.sent_now)
            question = f"Migrate {moving} enrollment(s)?" + (
                f" {at_once} email(s) will be sent at once." if at_once else ""
            )
            if moving and not yes and not typer.confirm(question):
                raise typer.Exit(1)
            with runtime.sessions.begin() as session:
                done = apply_files(session, runtime.project, clock.now(), migrate=migrate)
            for name in done.deployed:
                cli.console.print(f"[green]✓[/green] deployed {name}")
            for name in done.withdrawn:
                cli.console.print(f"[green]✓[/green] withdrawn {name} (its file is gone)")
            if migrate:
                cli.console.print(
                    f"[green]✓[/green] {done.moved} enrollment(s) migrated, "
                    f"{done.completed} completed (their step and every later one were removed)"
                )


_STATUS = {
    "new": "[green]new[/green]",
    "unchanged": "[dim]unchanged[/dim]",
    "changed": "[yellow]changed[/yellow]",
    "removed": "[red]removed[/red]",
}


def print_plan(plan: Plan) -> None:
    import nurture.cli.common as cli

    console = cli.console
    workflows = Table(title="Workflows: files compared with what is deployed")
    columns = ("workflow", "status", "deployed", "steps added", "removed", "changed")
    renumbered = any(w.renamed for w in plan.workflows)
    for name in (*columns, "same step, new id") if renumbered else columns:
        workflows.add_column(name)
    for w in plan.workflows:
        cells = [
            w.name,
            _STATUS[w.status],
            f"v{w.deployed}" if w.deployed else "–",
            ", ".join(w.added) or "–",
            ", ".join(w.removed) or "–",
            ", ".join(w.changed) or "–",
        ]
        if renumbered:
            cells.append(", ".join(f"{old} → {new}" for old, new in w.renamed) or "–")
        workflows.add_row(*cells)
    console.print(workflows)
    groups = [(w, g) for w in plan.workflows for g in w.groups]
    if not groups:
        console.print("No contact is mid-flow on another version: nothing moves.")
    else:
        title = "Contacts mid-flow on other versions" + (
            " (--migrate)" if plan.migrate else " (they stay; --migrate moves them)"
        )
        table = Table(title=title)
        for name in ("workflow", "version", "step", "enrollments", "what happens", "next email"):
            table.add_column(name, justify="right" if name == "enrollments" else "left")
        for w, g in groups:
            row = (w.name, f"v{g.version}", g.step or "–", str(g.count), g.says, g.sends)
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)
    if plan.sent_now:
        console.print("[bold yellow]Sent at once when this is applied:[/bold yellow]")
        for w, g in plan.sent_now:
            console.print(f"  {w.name} v{g.version} at {g.step or '–'}: {g.sends}", markup=False)
    if not plan.has_changes:
        console.print("[green]✓[/green] Nothing to apply: the files are what is deployed.")
