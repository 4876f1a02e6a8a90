"""The Jinja2 environment every template runs in, and the loader behind it.

Templates are written by marketers and rendered inside workers that hold
database and SMTP credentials, so they run in Jinja's immutable sandbox
(no `__class__` walks, no mutating the contact's lists) with `StrictUndefined`
(a typo fails `nurture validate` instead of mailing "Bonjour ,"). Two cheap
guards keep one template from freezing a worker: `*` and `**` refuse to build
huge strings or numbers.

The loader serves files under the templates root with their front matter lines
blanked, so `extends` and `include` work and every line Jinja reports is a line
of the file on disk. Each compiled template remembers the file's mtime and
size; Jinja recompiles it when they change and never otherwise. With
`recheck_after` seconds, a file checked that recently is not stat'ed again:
a worker renders a layout hundreds of times a second.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jinja2 import (
    BaseLoader,
    Environment,
    StrictUndefined,
    TemplateNotFound,
    TemplateSyntaxError,
)
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.runtime import Context

from nurture.contacts.view import ContactView
from nurture.definitions.fields import STANDARD_FIELDS
from nurture.expressions import GuardedSandbox
from nurture.rendering.filters import FILTERS
from nurture.rendering.frontmatter import strip_front_matter

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

#: Largest string, list or number exponent a template may build with `*`/`**`.
MAX_SEQUENCE_LENGTH = 100_000
MAX_EXPONENT = 1_000


def is_partial(name: str) -> bool:
    """Layouts and partials live under (or are) a path component starting with `_`."""
    return any(part.startswith("_") for part in name.split("/"))


def contact_attributes(contact: ContactView) -> list[str]:
    """Every attribute `contact.x` resolves on this view, for did-you-mean hints."""
    names = set(STANDARD_FIELDS)
    for slot in ("_fields", "_properties", "_declared"):
        names.update(getattr(contact, slot, ()))
    return sorted(names)


def missing_attribute_message(contact: ContactView, attribute: str) -> str:
    """The one wording for `contact.<unknown>`, shared by render and `check`."""
    message = f"'contact' has no attribute {attribute!r}"
    close = difflib.get_close_matches(attribute, contact_attributes(contact), n=1)
    if close:
        message += f" (did you mean {close[0]!r}?)"
    return message


class TemplateUndefined(StrictUndefined):
    """StrictUndefined that names `contact` instead of a Python class path."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        obj, name = self._undefined_obj, self._undefined_name
        if not self._undefined_hint and isinstance(obj, ContactView) and isinstance(name, str):
            return missing_attribute_message(obj, name)
        return str(super()._undefined_message)


def read_source(path: str, name: str) -> str:
    """A template file's text; not UTF-8 is a syntax error at the offending line."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        with open(path, "rb") as handle:
            line = handle.read()[: exc.start].count(b"\n") + 1
        message = f"the file is not UTF-8 text (byte {exc.object[exc.start]:#04x})"
        raise TemplateSyntaxError(message, line, name, path) from None


class TemplateLoader(BaseLoader):
    """Files under `root`, front matter blanked for email templates."""

    def __init__(self, root: Path, recheck_after: float = 0.0) -> None:
        self.root = root
        self.recheck_after = recheck_after
        self._checked: dict[str, float] = {}  # path → when it was last stat'ed

    def expire(self, template: str) -> None:
        """Stat `template` at its next use, however recently it was checked.

        `TemplateLibrary` calls this when it found an email's file changed:
        Jinja must not then hand back the old compiled version.
        """
        self._checked.pop(os.path.join(self.root, *split_template_path(template)), None)

    def get_source(
        self, environment: Environment, template: str
    ) -> tuple[str, str, Callable[[], bool]]:
        path = os.path.join(self.root, *split_template_path(template))
        try:
            stat = os.stat(path)
            source = read_source(path, template)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise TemplateNotFound(template) from None
        if template.endswith(".mjml") and not is_partial(template):
            source = strip_front_matter(source)
        stamp = (stat.st_mtime_ns, stat.st_size)
        self._checked[path] = time.monotonic()

        def uptodate() -> bool:
            moment = time.monotonic()
            last = self._checked.get(path)
            if last is not None and 0 <= moment - last < self.recheck_after:
                return True  # (0 <=: a test's frozen clock may jump back)
            self._checked[path] = moment
            try:
                now = os.stat(path)
            except OSError:
                return False
            return (now.st_mtime_ns, now.st_size) == stamp

        return source, path, uptodate

    def list_templates(self) -> list[str]:
        found = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return sorted(found)


class TemplateSandbox(GuardedSandbox):
    """The guarded sandbox, with size limits on `*` and `**`."""

    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # `contact.x` is read several times an email; a ContactView holds plain
        # data (its one method is `get`), so the full check, a dozen isinstance
        # tests, always comes to this for it.
        if type(obj) is ContactView:
            return not attr.startswith("_")
        return bool(super().is_safe_attribute(obj, attr, value))

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int) and abs(right) > MAX_EXPONENT:
                raise SecurityError(f"exponent {right} is larger than {MAX_EXPONENT}")
            return left**right
        for sequence, count in ((left, right), (right, left)):
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(count, int)
                and len(sequence) * count > MAX_SEQUENCE_LENGTH
            ):
                raise SecurityError(f"'*' would build a value longer than {MAX_SEQUENCE_LENGTH}")
        return left * right


def _autoescape(name: str | None) -> bool:
    """HTML escaping for MJML/HTML files; none for subjects, preheaders, `.txt`."""
    return name is not None and name.endswith((".mjml", ".html"))


def _finalize(value: Any) -> Any:
    """What `{{ }}` prints: None as nothing, text without control characters.

    A declared-but-empty contact property prints as nothing, not "None". A
    stray control character in a CRM field (NUL, ESC, vertical tab) is not
    valid in HTML, and MRML rejects the whole email for it: one contact's bad
    data must not stop a send.
    """
    if value is None:
        return ""
    if isinstance(value, str) and _CONTROL.search(value):
        return value.__class__(_CONTROL.sub("", value))
    return value


def make_environment(
    root: Path, *, auto_reload: bool = True, recheck_after: float = 0.0
) -> TemplateSandbox:
    environment = TemplateSandbox(
        loader=TemplateLoader(root, recheck_after),
        undefined=TemplateUndefined,
        autoescape=_autoescape,
        finalize=_finalize,
        auto_reload=auto_reload,
        cache_size=-1,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters.update(FILTERS)
    return environment
