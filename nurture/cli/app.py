"""The `nurture` command: the Typer app, every command group registered on it.

Thin on purpose: every command is a few lines over a function the tests call
directly. The commands live one group a module (`project`, `data`, `bounces`, `engine`,
`serve`, `handoffs`, `users`, `privacy`, `reports`, `segments`, `init`, `graph`,
`deploy`); what they share is `nurture.cli.common`.
"""

from __future__ import annotations

import sys

import typer

from nurture.cli import (
    bounces,
    data,
    deploy,
    engine,
    graph,
    handoffs,
    init,
    privacy,
    project,
    reports,
    segments,
    serve,
    users,
)
from nurture.cli.common import errors
from nurture.errors import ConfigurationError

app = typer.Typer(
    name="nurture",
    help="Email nurturing workflows as code: lifecycle stages, lead scoring, sales handoff.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
contacts_app = typer.Typer(
    help="Contacts: import, move; export and erase (GDPR).", no_args_is_help=True
)
app.add_typer(contacts_app, name="contacts")

project.register(app)
data.register(app, contacts_app)
bounces.register(app)
engine.register(app)
serve.register(app)
handoffs.register(app)
privacy.register(app, contacts_app)
reports.register(app)
segments.register(app)
init.register(app)
graph.register(app)
deploy.register(app)
users.register(app)


def main() -> None:
    try:
        app()
    except ConfigurationError as exc:
        errors.print(f"[red]error:[/red] configuration: {exc}", soft_wrap=True)
        sys.exit(78)
