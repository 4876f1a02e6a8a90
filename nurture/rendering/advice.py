"""What `nurture validate` warns about in templates: they render, but will hurt when sent.

Two mistakes come with templates written for another tool: placeholders in
its syntax (`{firstname}`, `*|FNAME|*`, `%%FirstName%%`), which nurture sends
as they are, and no unsubscribe link, which that tool added by itself. A
warning does not fail `validate` (`--strict` makes it an error).
"""

from __future__ import annotations

import re
from pathlib import Path

from nurture.definitions import model as m
from nurture.errors import Problem, TemplateError

#: What Jinja reads (`{{ }}`, `{% %}`, `{# #}`), blanked before looking for others' tags.
#: A `{% raw %}` block first: what it holds is meant to be sent as written.
_JINJA = re.compile(
    r"\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S
)
#: Placeholders of other senders: `{first_name}`, `*|FNAME|*` (Mailchimp), `%%FirstName%%`.
_FOREIGN = re.compile(
    r"(?<![{$\w])\{\s*([A-Za-z_][\w.-]*)\s*\}(?!\})"
    r"|\*\|([A-Z0-9_:]+)\|\*"
    r"|%%([A-Za-z_]\w*)%%"
)
_SAMPLE_UNSUBSCRIBE_HREF = re.compile(r"""href\s*=\s*["']([^"']*)["']""", re.I)


def _blank(match: re.Match[str]) -> str:
    """The match as spaces, its newlines kept: offsets and line numbers stay true."""
    return re.sub(r"[^\n]", " ", match.group(0))


def placeholder_warnings(templates_dir: Path, config: m.ProjectConfig) -> list[Problem]:
    """`{firstname}` and the like in any template file: sent verbatim to the contact."""
    from nurture.definitions.fields import STANDARD_FIELDS
    from nurture.rendering.diagnose import contact_field_for

    fields = (*STANDARD_FIELDS, *config.properties)
    warnings = []
    shown = templates_dir.name
    for path in sorted([*templates_dir.rglob("*.mjml"), *templates_dir.rglob("*.txt")]):
        try:
            source = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            continue  # check_templates reports an unreadable file
        text = _JINJA.sub(_blank, source)
        file = f"{shown}/{path.relative_to(templates_dir).as_posix()}"
        for found in _FOREIGN.finditer(text):
            name = next(group for group in found.groups() if group)
            line = text.count("\n", 0, found.start()) + 1
            field = contact_field_for(name, fields)
            instead = (
                f"write {{{{ contact.{field} }}}}"
                if field
                else f"write {{{{ contact.{_snake(name)} }}}} after declaring "
                f"'{_snake(name)}' under properties: in nurture.yaml"
            )
            warnings.append(
                Problem(
                    file,
                    line,
                    f"warning: {found.group(0)!r} is not a nurture placeholder: it is sent as "
                    f"it is; {instead}",
                )
            )
    return warnings


def _snake(name: str) -> str:
    """`FirstName` → `first_name`, `FNAME` → `fname`: the lowercase spelling nurture uses."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower().replace("-", "_")


def unsubscribe_warnings(templates_dir: Path, config: m.ProjectConfig) -> list[Problem]:
    """Emails to contacts that, rendered for the sample contact, link to no unsubscribe URL.

    A link in the layout counts: the check looks at the rendered email. Emails
    to sales (`templates/sales/`) have none on purpose.
    """
    from nurture.definitions.checks import SALES_FOLDER
    from nurture.rendering import SAMPLE_UNSUBSCRIBE_URL, TemplateLibrary, sample_context

    library = TemplateLibrary(templates_dir)
    context = sample_context(config.properties, config.stages)
    warnings = []
    for name in library.names():
        if name.startswith(SALES_FOLDER):
            continue
        try:
            email = library.render(name, context)
        except TemplateError:
            continue  # an error already, reported by check_templates
        hrefs = {found.group(1) for found in _SAMPLE_UNSUBSCRIBE_HREF.finditer(email.html)}
        if SAMPLE_UNSUBSCRIBE_URL not in hrefs:
            warnings.append(
                Problem(
                    library.display(str(library.path_of(name))),
                    None,
                    "warning: no link to {{ unsubscribe_url }}: contacts need a visible way "
                    "to unsubscribe (the law asks for one); add "
                    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> to the email or its layout',
                )
            )
    return warnings


def template_warnings(templates_dir: Path, config: m.ProjectConfig) -> list[Problem]:
    """Every template warning, in file order."""
    found = placeholder_warnings(templates_dir, config) + unsubscribe_warnings(
        templates_dir, config
    )
    return sorted(found, key=lambda p: (p.file, p.line or 0, p.message))
