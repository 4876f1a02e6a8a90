"""From whatever went wrong to `file:line: message` a marketer can act on.

Jinja rewrites tracebacks so that frames of compiled templates carry the
template's filename and line; the innermost such frame is where the fault is,
even inside a layout or an included partial. MRML gives no line, so MJML
faults are located by linting the template sources for the tag that does not
balance. The static checks find what one sample render cannot: a
`contact.typo` or an unknown name in a branch the sample contact skipped.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from jinja2 import TemplateNotFound, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaTemplateError

from nurture.contacts.view import ContactView
from nurture.definitions.fields import STANDARD_FIELDS
from nurture.errors import Problem
from nurture.expressions import private_names
from nurture.rendering.markup import MjmlFailure, line_at, line_text, lint_tags, tag_text
from nurture.rendering.sandbox import contact_attributes, missing_attribute_message

#: The filename Jinja gives templates compiled from a string (subject, preheader).
STRING_FILENAME = "<template>"
#: Names Jinja binds by itself; never "undefined" in the static check.
_JINJA_NAMES = frozenset({"loop", "super", "self", "caller", "varargs", "kwargs"})
_UNDEFINED_NAME = re.compile(r"^'(\w+)' is undefined$")
_MISSING = object()

#: (display file, source with front matter blanked, parsed tree) of one template.
Source = tuple[str, str, nodes.Template]


def _hint(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, sorted(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: Other tools' names for contact fields, squashed (`FName`, `Company_Name`).
_FOREIGN_FIELDS = {
    "fname": "first_name",
    "lname": "last_name",
    "companyname": "company",
    "emailaddress": "email",
    "mail": "email",
}
_RAW_HINT = "for braces shown as they are, wrap them in {% raw %}…{% endraw %}"


def _squashed(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def contact_field_for(name: str, fields: Iterable[str]) -> str | None:
    """The contact field another tool's `name` stands for (`FirstName` → `first_name`)."""
    squashed = _squashed(name)
    return _FOREIGN_FIELDS.get(squashed) or next(
        (field for field in fields if _squashed(field) == squashed), None
    )


def undefined_name_message(name: str, known: Iterable[str], contact: Any = None) -> str:
    """The name's close look-alike, or, for another tool's merge tag, what nurture writes.

    `{{FirstName}}` comes from templates written for another sender; nurture
    names never hold a capital, so such a name gets the `contact.` spelling.
    """
    hint = _hint(name, known)
    if hint or name == name.lower():
        return f"{name!r} is undefined{hint}"
    fields = contact_attributes(contact) if isinstance(contact, ContactView) else STANDARD_FIELDS
    field = contact_field_for(name, fields)
    if field is not None:
        return (
            f"{name!r} is undefined: nurture writes this contact field as "
            f"{{{{ contact.{field} }}}} (another tool's merge tag?); {_RAW_HINT}"
        )
    return (
        f"{name!r} is undefined: another tool's merge tag? nurture reads a contact's fields, "
        "and the properties declared in nurture.yaml, as {{ contact.<name> }} in lowercase "
        f"(such as {{{{ contact.first_name }}}}); {_RAW_HINT}"
    )


def template_frame(exc: BaseException, prefix: str) -> tuple[str, int] | None:
    """The innermost traceback frame on a template line (file under `prefix`)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.startswith(prefix) or filename == STRING_FILENAME:
            found = (filename, tb.tb_lineno)
        tb = tb.tb_next
    return found


def exception_problem(
    exc: Exception,
    *,
    file: str,
    line: int | None,
    prefix: str,
    display: Callable[[str], str],
    known_names: Iterable[str],
    template_names: Callable[[], Sequence[str]],
    contact: Any = None,
) -> Problem | None:
    """The problem `exc` reports, or None when it is not a template's fault.

    `file` and `line` are the fallback location; for a template compiled from a
    front-matter value, `line` is the value's line in the file and Jinja's line
    inside the value is added to it.
    """
    if isinstance(exc, TemplateSyntaxError):
        where: tuple[str, int] | None = (exc.filename or STRING_FILENAME, exc.lineno)
    else:
        where = template_frame(exc, prefix)
        if where is None and not isinstance(exc, JinjaTemplateError):
            return None  # a bug in nurture, not in the template
    if where is not None:
        filename, lineno = where
        if filename == STRING_FILENAME:
            line = (line or 1) + lineno - 1
        else:
            file, line = display(filename), lineno
    return Problem(file, line, _message(exc, known_names, template_names, contact))


def _message(
    exc: Exception,
    known_names: Iterable[str],
    template_names: Callable[[], Sequence[str]],
    contact: Any = None,
) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"template syntax error: {exc.message}"
    if isinstance(exc, TemplateNotFound):
        return f"template {exc.name!r} not found{_hint(str(exc.name), template_names())}"
    if isinstance(exc, SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, UndefinedError):
        match = _UNDEFINED_NAME.match(str(exc))
        if match is None:
            return str(exc)
        return undefined_name_message(match.group(1), known_names, contact)
    if isinstance(exc, JinjaTemplateError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def mjml_problem(
    sources: Sequence[Source], email_file: str, mjml: str, failure: MjmlFailure
) -> Problem:
    """Turn MRML's terse message into a file and a line, as best we can.

    First the sources themselves (an unclosed tag is literal text there), then
    the rendered MJML, mapped back to the first source line holding the same
    text. Without a match the problem names the email file and no line.
    """
    message = f"MJML error: {failure.message}"
    for html in (False, True):
        for file, source, _ in sources:
            for tag in lint_tags(source, jinja=True, html=html):
                if tag.kind == "balance":
                    where = line_at(source, tag.offset)
                    return Problem(file, where, f"{message}: {tag.message}")
    for tag in lint_tags(mjml, html=True):
        if tag.kind == "balance":
            file, line = locate(sources, email_file, tag_text(mjml, tag.offset))
            return Problem(file, line, f"{message}: {tag.message}")
    if failure.offset is not None:
        snippet = line_text(mjml, failure.offset)
        file, line = locate(sources, email_file, snippet)
        return Problem(file, line, f"{message} near {snippet[:80]!r}")
    return Problem(email_file, None, message)


def locate(sources: Sequence[Source], email_file: str, snippet: str) -> tuple[str, int | None]:
    """The first source line containing `snippet` (text from the rendered MJML)."""
    if snippet:
        for file, source, _ in sources:
            for number, text in enumerate(source.split("\n"), start=1):
                if snippet in text:
                    return file, number
    return email_file, None


def static_problems(
    sources: Sequence[Source], context: Mapping[str, Any], known: set[str]
) -> list[Problem]:
    """`contact.x` the contact lacks, unknown names, unknown MJML elements.

    Unknown names are checked in the email itself only: a partial may use a
    loop variable of the template that includes it.
    """
    problems: list[Problem] = []
    contact = context.get("contact")
    known = known | _JINJA_NAMES
    for index, (file, source, tree) in enumerate(sources):
        if isinstance(contact, ContactView):
            for attr in tree.find_all(nodes.Getattr):
                if (
                    isinstance(attr.node, nodes.Name)
                    and attr.node.name == "contact"
                    and contact.get(attr.attr, _MISSING) is _MISSING
                ):
                    message = missing_attribute_message(contact, attr.attr)
                    problems.append(Problem(file, attr.lineno, message))
        for line, private in private_names(tree):
            message = f"{private!r} is not allowed: names starting with '_' are internal"
            problems.append(Problem(file, line, message))
        if index == 0:
            unknown = meta.find_undeclared_variables(tree) - known
            for name in tree.find_all(nodes.Name):
                if name.ctx == "load" and name.name in unknown:
                    message = undefined_name_message(name.name, known, contact)
                    problems.append(Problem(file, name.lineno, message))
        for tag in lint_tags(source, jinja=True):
            if tag.kind == "unknown":
                problems.append(Problem(file, line_at(source, tag.offset), tag.message))
    return problems


def balance_problem(sources: Sequence[Source], email_file: str, mjml: str) -> Problem | None:
    """A tag MRML accepted but that does not balance in the rendered MJML."""
    for tag in lint_tags(mjml):
        if tag.kind == "balance":
            for file, source, _ in sources:
                for own in lint_tags(source, jinja=True):
                    if own.kind == "balance":
                        return Problem(file, line_at(source, own.offset), f"MJML: {own.message}")
            file, line = locate(sources, email_file, tag_text(mjml, tag.offset))
            return Problem(file, line, f"MJML: {tag.message}")
    return None
