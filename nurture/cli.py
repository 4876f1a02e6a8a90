"""The `nurture` command: parses arguments, calls the library, prints.

Thin on purpose: every command is a few lines over a function the tests call
directly. Problems in files print as plain `file:line: message` lines on
stdout, one per problem, so editors and CI logs can link them; everything else
is rich output for people.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
import yaml
from rich.console import Console
from rich.table import Table

from nurture.cli_options import ProjectDir
from nurture.definitions import model as m
from nurture.definitions.loader import CONFIG_FILE, TEMPLATES_DIR, Project, read_project
from nurture.definitions.schema import SCHEMAS
from nurture.errors import ConfigurationError, DefinitionError, NurtureError, Problem
from nurture.settings import get_settings

app = typer.Typer(
    name="nurture",
    help="Email nurturing workflows as code: lifecycle stages, lead scoring, sales handoff.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
contacts_app = typer.Typer(help="Contacts: import; export and erase (GDPR).", no_args_is_help=True)
app.add_typer(contacts_app, name="contacts")

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


def _fail(message: str, code: int = 1) -> NoReturn:
    errors.print(f"[red]error:[/red] {message}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _reported() -> Iterator[None]:
    """Turn our exceptions into a message and an exit code, never a traceback."""
    try:
        yield
    except DefinitionError as exc:
        _print_problems(exc.problems)
        raise typer.Exit(1) from None
    except ConfigurationError as exc:
        _fail(f"configuration: {exc}", 78)
    except NurtureError as exc:
        _fail(str(exc))


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        typer.echo(str(problem))
    count = len(problems)
    errors.print(f"[red]{count} problem{'s' if count != 1 else ''}[/red]")


def _project_dir(project: Path | None) -> Path:
    return project if project is not None else get_settings().project_dir


def _engine(runtime: Any) -> Any:
    """An engine for commands that change contacts but send nothing."""
    from nurture.engine.service import Engine
    from nurture.runtime import settle_heap

    engine = Engine(runtime.project, runtime.sessions)
    settle_heap()  # an import of many rows follows
    return engine


def _runtime(project: Path | None) -> Any:
    from nurture.runtime import Runtime

    return Runtime(get_settings(), _project_dir(project))


# --- validate ----------------------------------------------------------------


@app.command()
def validate(
    directory: Annotated[
        Path | None, typer.Argument(help="Project folder (default: the current one).")
    ] = None,
) -> None:
    """Check every file and every template; report each problem as file:line: message."""
    from nurture.template_checks import check_templates

    with _reported():
        root = _project_dir(directory)
        project, problems = read_project(root)
        config = project.config if project else _config_only(root)
        if config is not None:
            # Templates need only nurture.yaml (stages, properties): check them even
            # when a workflow is broken, so one run lists every problem.
            problems = problems + check_templates(root / TEMPLATES_DIR, config)
        if problems:
            _print_problems(problems)
            raise typer.Exit(1)
        assert project is not None
        _print_summary(project)


def _config_only(root: Path) -> m.ProjectConfig | None:
    from nurture.definitions.config import parse_config

    path = root / CONFIG_FILE
    if not path.is_file():
        return None
    config, _ = parse_config(path.read_text(encoding="utf-8"), CONFIG_FILE)
    return config


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


@app.command()
def schema(
    kind: Annotated[
        str, typer.Argument(help="config (nurture.yaml) or workflow (workflows/*.yaml).")
    ] = "workflow",
) -> None:
    """Print the JSON Schema of nurture.yaml or of a workflow file, for editors."""
    if kind not in SCHEMAS:
        _fail(f"unknown schema {kind!r}: expected one of {', '.join(SCHEMAS)}", 2)
    typer.echo(json.dumps(SCHEMAS[kind](), indent=2, ensure_ascii=False))


# --- preview --------------------------------------------------------------------


@app.command()
def preview(
    template: Annotated[str, typer.Argument(help="Template name, e.g. lead/welcome.")],
    contact: Annotated[
        str | None,
        typer.Option(
            help="A contact's email (looked up in the database) or a JSON/YAML file of fields."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the page the recipient sees to this HTML file.")
    ] = None,
    project: ProjectDir = None,
) -> None:
    """Render a template for one contact: subject, preheader and body."""
    from nurture import clock
    from nurture.rendering import TemplateLibrary, email_context, preview_page, sample_context

    with _reported():
        runtime = _runtime(project)
        config = runtime.project.config
        context = sample_context(config.properties, config.stages)
        if contact is not None:
            view = _load_contact(runtime, contact)
            context = email_context(
                view,
                unsubscribe_url=context["unsubscribe_url"],
                view_in_browser_url=context["view_in_browser_url"],
                now=clock.now(),
            )
        library = TemplateLibrary(runtime.project.templates_dir)
        if not library.exists(template):
            raise NurtureError(
                f"no template '{template}' (expected {library.path_of(template)}); "
                f"templates: {', '.join(library.names())}"
            )
        email = library.render(template, context)
        console.print(f"[bold]Subject:[/bold] {email.subject}", soft_wrap=True)
        console.print(f"[bold]Preheader:[/bold] {email.preheader}", soft_wrap=True)
        console.rule("text part")
        console.print(email.text, markup=False, soft_wrap=True)
        if out is not None:
            out.write_text(preview_page(email), encoding="utf-8")
            console.print(f"[green]✓[/green] wrote {out}")


def _load_contact(runtime: Any, reference: str) -> Any:
    """A contact view from a file of fields, or from the database by email."""
    from nurture.contacts import ContactView

    config = runtime.project.config
    path = Path(reference)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise NurtureError(f"{path}: not JSON or YAML ({exc})") from None
        if not isinstance(data, dict):
            raise NurtureError(f"{path}: expected an object of contact fields")
        from nurture.contacts import STANDARD_FIELDS

        fields = {k: v for k, v in data.items() if k in STANDARD_FIELDS}
        properties = {k: v for k, v in data.items() if k not in STANDARD_FIELDS}
        stage = fields.get("stage") or config.stages[0]
        fields.setdefault("stage", stage)
        if stage in config.stages:
            fields.setdefault("stage_index", config.stages.index(stage))
        return ContactView(fields, properties, declared=config.properties)
    from nurture.store.queries import contact_view_by_email

    with runtime.sessions() as session:
        view = contact_view_by_email(session, reference, config)
    if view is None:
        raise NurtureError(f"no contact with email {reference!r} (and no such file)")
    return view


@app.command()
def explain(
    email: Annotated[str, typer.Argument(help="The contact's email.")],
    json_output: Annotated[bool, typer.Option("--json", help="The same, as JSON.")] = False,
    project: ProjectDir = None,
) -> None:
    """Where a contact is and why: stage, score ledger, workflows, next step, emails."""
    from nurture import clock, output
    from nurture.explain import explain as gather

    with _reported():
        runtime = _runtime(project)
        with runtime.sessions() as session:
            data = gather(session, _engine(runtime), email, clock.now())
        if json_output:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            output.print_explanation(console, data)


def _settings_for(project: Path | None) -> Any:
    import os

    if project is not None:
        os.environ["NURTURE_PROJECT_DIR"] = str(project)
        get_settings.cache_clear()
    return get_settings()


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _logging() -> None:
    """Rich lines for people, or one JSON object per line (`NURTURE_LOG_FORMAT=json`)."""
    from rich.logging import RichHandler

    from nurture.logs import configure

    configure(get_settings().log_format, text_handler=RichHandler(console=errors, show_path=False))


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        errors.print(f"[red]error:[/red] configuration: {exc}", soft_wrap=True)
        sys.exit(78)


from nurture.data_commands import register as _register_data  # noqa: E402
from nurture.deploy_commands import register as _register_deploy  # noqa: E402
from nurture.engine_commands import register as _register_engine  # noqa: E402
from nurture.graph_commands import register as _register_graph  # noqa: E402
from nurture.handoff_commands import register as _register_handoffs  # noqa: E402
from nurture.privacy_commands import register as _register_privacy  # noqa: E402
from nurture.report_commands import register as _register_report  # noqa: E402
from nurture.scaffold import register as _register_scaffold  # noqa: E402
from nurture.web.commands import register as _register_web  # noqa: E402

_register_data(app, contacts_app)
_register_engine(app)
_register_web(app)
_register_handoffs(app)
_register_privacy(app, contacts_app)
_register_report(app)
_register_scaffold(app)
_register_graph(app)
_register_deploy(app)
