"""`nurture validate`, `schema`, `preview` and `explain`: the project and one contact.

Problems in files print as plain `file:line: message` lines on stdout, one per
problem, so editors and CI logs can link them; everything else is rich output
for people.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nurture.cli.common import (
    ProjectDir,
    console,
    engine_for,
    fail,
    open_runtime,
    print_problems,
    project_dir,
    reported,
)
from nurture.cli.preview import preview
from nurture.definitions import model as m
from nurture.definitions.loader import TEMPLATES_DIR, Project, read_config_file, read_project
from nurture.definitions.schema import SCHEMAS


def register(app: typer.Typer) -> None:
    app.command()(validate)
    app.command()(schema)
    app.command()(preview)  # its own module: nurture.cli.preview
    app.command()(explain)


# --- validate ----------------------------------------------------------------


def validate(
    directory: Annotated[
        Path | None, typer.Argument(help="Project folder (default: the current one).")
    ] = None,
    strict: Annotated[
        bool, typer.Option("--strict", help="Warnings are errors (exit 1): for CI.")
    ] = False,
) -> None:
    """Check every file and every template; report each problem as file:line: message.

    Warnings (valid, but likely to hurt in the field) are printed too and do not
    fail the check unless --strict is given.
    """
    from nurture.definitions.advice import config_warnings
    from nurture.rendering.advice import template_warnings
    from nurture.rendering.checks import check_templates

    with reported():
        root = project_dir(directory)
        project, problems = read_project(root)
        # What of nurture.yaml parsed: templates are checked even when a file is broken.
        config = project.config if project else read_config_file(root)[0]
        warnings = config_warnings(config) if config is not None else []
        if config is not None:
            # Templates need only nurture.yaml (stages, properties): check them even
            # when a workflow is broken, so one run lists every problem.
            problems = problems + check_templates(root / TEMPLATES_DIR, config)
            warnings += template_warnings(root / TEMPLATES_DIR, config)
        if strict:
            problems, warnings = problems + warnings, []
        if problems:
            print_problems(problems)
            raise typer.Exit(1)
        assert project is not None
        for warning in warnings:
            typer.echo(str(warning))
        _print_summary(project)


def _print_summary(project: Project) -> None:
    config = project.config
    thresholds = dict(config.scoring.thresholds)
    ladder = " → ".join(
        f"{stage} (≥{thresholds[stage]:g})" if stage in thresholds else stage
        for stage in config.stages
    )
    console.print(f"[green]✓[/green] {project.root.resolve()} is valid")
    console.print(f"  stages: {ladder}; nurture stops at [bold]{config.prospect_stage}[/bold]")
    scoring = config.scoring
    decay = f", half-life {_duration(scoring.half_life)}" if scoring.half_life else ""
    console.print(f"  scoring: {len(scoring.rules)} rules, {len(scoring.fit)} fit rules{decay}")
    if config.handoff:
        handoff = config.handoff
        owners = ", ".join(handoff.assign.round_robin) or (
            f"{len(handoff.assign.rules)} rules" if handoff.assign.rules else "contact owner"
        )
        console.print(f"  handoff at {handoff.at}: {owners}")
    if config.segments:
        console.print(f"  segments: {', '.join(config.segments)}")
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("workflow", "enrolls on", "steps", "emails"):
        table.add_column(column)
    for workflow in project.workflows.values():
        enroll = workflow.enroll
        trigger = (
            f"stage {enroll.stage}"
            if enroll.stage
            else f"event {enroll.event}"
            if enroll.event
            else f"segment {enroll.segment}"
            if enroll.segment
            else f"when {enroll.when.source if enroll.when else ''}"
        )
        sends = sum(isinstance(step, m.SendStep) for step in workflow.steps)
        table.add_row(workflow.name, trigger, str(len(workflow.steps)), str(sends))
    console.print(table)
    console.print(f"  {len(project.template_names)} email templates")


def _duration(value: Any) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# --- schema --------------------------------------------------------------------


def schema(
    kind: Annotated[
        str, typer.Argument(help="config (nurture.yaml) or workflow (workflows/*.yaml).")
    ] = "workflow",
) -> None:
    """Print the JSON Schema of nurture.yaml or of a workflow file, for editors."""
    if kind not in SCHEMAS:
        fail(f"unknown schema {kind!r}: expected one of {', '.join(SCHEMAS)}", 2)
    typer.echo(json.dumps(SCHEMAS[kind](), indent=2, ensure_ascii=False))


def explain(
    email: Annotated[str, typer.Argument(help="The contact's email.")],
    json_output: Annotated[bool, typer.Option("--json", help="The same, as JSON.")] = False,
    project: ProjectDir = None,
) -> None:
    """Where a contact is and why: stage, score ledger, workflows, next step, emails."""
    import nurture.clock as clock
    import nurture.readable as readable
    import nurture.tools.output as output
    from nurture.lifecycle.handoff.readers import timezone_for
    from nurture.tools.explain import explain as gather

    with reported():
        runtime = open_runtime(project)
        now = clock.now()
        with runtime.sessions() as session:
            zone = timezone_for(session, runtime.project.config, None)
            if json_output:  # exact: ISO times in UTC, unrounded scores
                data = gather(session, engine_for(runtime), email, now)
            else:
                data = gather(
                    session,
                    engine_for(runtime),
                    email,
                    now,
                    lambda moment: readable.local_time_from_now(
                        moment, zone, readable.CLI_LANGUAGE, now
                    ),
                )
        if json_output:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            output.print_explanation(console, data, zone, now)
