"""`nurture preview`: one template rendered as its recipient gets it.

A preview needs nurture.yaml (the properties a template may read) and the
template, nothing else: a broken workflow elsewhere does not stop it. Emails
to contacts render for the sample contact `validate` uses, or for a real one
(`--contact`); emails to sales (`templates/sales/`) for the sample handoff
and digest `validate` uses, or for a real handoff (`--handoff`), through the
same context the send builds.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.rule import Rule

from nurture.cli.common import ProjectDir, console, open_runtime, project_dir, reported
from nurture.definitions import model as m
from nurture.definitions.checks import SALES_FOLDER
from nurture.definitions.loader import TEMPLATES_DIR, read_config_file
from nurture.errors import DefinitionError, NurtureError


def preview(
    template: Annotated[str, typer.Argument(help="Template name, e.g. lead/welcome.")],
    contact: Annotated[
        str | None,
        typer.Option(
            help="A contact's email (looked up in the database) or a JSON/YAML file of fields."
        ),
    ] = None,
    handoff: Annotated[
        int | None,
        typer.Option(
            help="For a sales email: a handoff's number (from the database), instead of "
            "the sample handoff."
        ),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the page the recipient sees to this HTML file.")
    ] = None,
    project: ProjectDir = None,
) -> None:
    """Render a template for one contact or handoff: subject, preheader and body."""
    from nurture.rendering import TemplateLibrary, preview_page

    with reported():
        root = project_dir(project)
        config, problems = read_config_file(root)
        if problems or config is None:
            raise DefinitionError(problems)
        library = TemplateLibrary(root / TEMPLATES_DIR)
        name = _email_name(library, template)
        context = _context(project, config, name, contact, handoff)
        email = library.render(name, context)
        console.print(f"[bold]Subject:[/bold] {email.subject}", soft_wrap=True)
        console.print(f"[bold]Preheader:[/bold] {email.preheader}", soft_wrap=True)
        console.print(Rule("text part"), width=min(console.width, 80))  # piped: not 100k wide
        console.print(email.text, markup=False, soft_wrap=True)
        if out is not None:
            out.write_text(preview_page(email), encoding="utf-8")
            console.print(f"[green]✓[/green] wrote {out}")


def _email_name(library: Any, template: str) -> str:
    """The email template `template` names, or an error saying what it is instead."""
    from nurture.rendering.sandbox import is_partial

    name = template.strip().removesuffix(".mjml")
    if library.exists(name):
        return name
    inside = ".." not in name.split("/")
    if inside and is_partial(name) and library.path_of(name).is_file():
        users = _emails_using(library, name)
        if not users:
            raise NurtureError(
                f"'{name}' is a layout or partial, not an email, and no email uses it yet: "
                "preview an email that extends or includes it"
            )
        shown = ", ".join(users[:5]) + (f" and {len(users) - 5} more" if len(users) > 5 else "")
        raise NurtureError(
            f"'{name}' is a layout or partial, not an email: preview an email that uses it, "
            f"such as 'nurture preview {users[0]}' (used by {shown})"
        )
    raise NurtureError(
        f"no template '{name}' (expected {library.path_of(name)}); "
        f"templates: {', '.join(library.names())}"
    )


def _emails_using(library: Any, partial: str) -> list[str]:
    """Emails whose source names `partial` in an extends, include or import."""
    pattern = re.compile(rf"""["']{re.escape(partial)}(?:\.mjml)?["']""")
    found = []
    for name in library.names():
        source = library.path_of(name)
        twin = source.with_suffix(".txt")
        texts = [source.read_text(encoding="utf-8", errors="replace")]
        if twin.is_file():
            texts.append(twin.read_text(encoding="utf-8", errors="replace"))
        if any(pattern.search(text) for text in texts):
            found.append(name)
    return found


def _context(
    project: Path | None,
    config: m.ProjectConfig,
    name: str,
    contact: str | None,
    handoff: int | None,
) -> dict[str, Any]:
    """The sample `validate` uses for this template, or a real contact's or handoff's."""
    import nurture.clock as clock
    from nurture.lifecycle.handoff.actions import DIGEST_TEMPLATE
    from nurture.rendering import email_context, sample_context
    from nurture.rendering.checks import sample_sales_context

    sales = name.startswith(SALES_FOLDER)
    if handoff is not None:
        if not sales or name == DIGEST_TEMPLATE:
            what = "an owner's weekly digest" if sales else "an email to a contact"
            raise NurtureError(
                f"--handoff is for emails about one handoff (templates/{SALES_FOLDER}…); "
                f"'{name}' is {what}: preview it without --handoff"
                + ("" if sales else ", or with --contact")
            )
        if contact is not None:
            raise NurtureError("--handoff already names its contact: give one or the other")
        return _handoff_context(project, config, handoff, clock.now())
    if sales:
        context = sample_sales_context(config)
        if contact is not None:
            context["contact"] = _load_contact(project, config, contact)
        return context
    context = sample_context(config.properties, config.stages)
    if contact is None:
        return context
    return email_context(
        _load_contact(project, config, contact),
        unsubscribe_url=context["unsubscribe_url"],
        view_in_browser_url=context["view_in_browser_url"],
        now=clock.now(),
    )


def _handoff_context(
    project: Path | None, config: m.ProjectConfig, handoff_id: int, now: Any
) -> dict[str, Any]:
    """What the handoff's owner gets: the payload and contact the send would use."""
    from nurture.contacts.standing import view_of
    from nurture.lifecycle.handoff import views
    from nurture.lifecycle.handoff.readers import timezone_for
    from nurture.lifecycle.notifications import json_safe, sales_email_context
    from nurture.store.contacts import contact_by_id
    from nurture.store.handoffs import handoff_by_id

    runtime = open_runtime(project)
    with runtime.sessions() as session:
        handoff = handoff_by_id(session, handoff_id)
        if handoff is None:
            raise NurtureError(f"no handoff #{handoff_id} (see 'nurture handoffs list')")
        contact = contact_by_id(session, handoff.contact_id)
        if contact is None:  # erased since (GDPR): nothing left to show
            raise NurtureError(f"handoff #{handoff_id}: its contact was erased")
        payload = json_safe(views.payload(views.fields_of(handoff), contact, handoff.snapshot))
        view = view_of(contact, config, now)
        timezone = timezone_for(session, config, handoff.owner)
    return sales_email_context(view, payload, runtime.settings.base_url, now, timezone)


def _load_contact(project: Path | None, config: m.ProjectConfig, reference: str) -> Any:
    """A contact view from a file of fields, or from the database by email."""
    from nurture.contacts.view import ContactView

    path = Path(reference)
    if path.is_file():
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise NurtureError(f"{path}: not JSON or YAML ({exc})") from None
        if not isinstance(data, dict):
            raise NurtureError(f"{path}: expected an object of contact fields")
        from nurture.definitions.fields import STANDARD_FIELDS

        fields = {k: v for k, v in data.items() if k in STANDARD_FIELDS}
        properties = {k: v for k, v in data.items() if k not in STANDARD_FIELDS}
        stage = fields.get("stage") or config.stages[0]
        fields.setdefault("stage", stage)
        if stage in config.stages:
            fields.setdefault("stage_index", config.stages.index(stage))
        return ContactView(fields, properties, declared=config.properties)
    from nurture.store.contacts import contact_view_by_email

    runtime = open_runtime(project)
    with runtime.sessions() as session:
        view = contact_view_by_email(session, reference, config)
    if view is None:
        raise NurtureError(f"no contact with email {reference!r} (and no such file)")
    return view
