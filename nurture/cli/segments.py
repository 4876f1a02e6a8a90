"""`nurture segments`: each segment of nurture.yaml with its size, and the one full pass.

Registered on the main Typer app by `nurture.cli.app` (`register`); the figures
come from `nurture.tools.segments`.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from nurture.cli.common import ProjectDir


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    @app.command()
    def segments(
        refresh: Annotated[
            bool,
            typer.Option(
                "--refresh",
                help="Judge every contact against every segment first: after adding or "
                "changing a segment (membership is otherwise kept current as contacts change, "
                "events arrive and windows pass).",
            ),
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
        project: ProjectDir = None,
    ) -> None:
        """Each segment with its size (contacts in it now) and its definition."""
        import nurture.clock as clock
        from nurture.tools import segments as tool

        with cli.reported():
            runtime = cli.open_runtime(project)
            config = runtime.project.config
            if refresh:
                engine = cli.engine_for(runtime)
                upkeep = engine.lifecycle.segments
                if upkeep is not None:
                    judged, changed = tool.refresh(runtime.sessions, upkeep, clock.now())
                    said = cli.errors if as_json else cli.console
                    said.print(
                        f"[green]✓[/green] {judged} contacts judged: {changed} entries and exits"
                    )
            with runtime.sessions() as session:
                rows = tool.segment_sizes(session, config)
        if as_json:
            typer.echo(json.dumps({"segments": rows}, ensure_ascii=False, indent=2))
            return
        if not rows:
            cli.console.print("no segments: declare them under 'segments:' in nurture.yaml")
            return
        table = Table(box=None, pad_edge=False)
        table.add_column("segment")
        table.add_column("contacts", justify="right")
        table.add_column("definition")
        for row in rows:
            table.add_row(row["segment"], str(row["size"]), row["definition"])
        cli.console.print(table)
