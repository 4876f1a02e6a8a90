"""A project's `templates/` folder: compile once, render per contact, check all.

`TemplateLibrary.render` is the send path: front matter and Jinja are compiled
once per file version (keyed by mtime and size), then each contact costs a
Jinja render, one MRML call, the text part and the link rewrite. Every fault a
template can have surfaces as `TemplateError` carrying one `Problem` with the
file as the project knows it (`templates/_layouts/base.mjml`) and the line in
that file.

`check` is the validate path: the same steps on a sample context, collecting
every problem instead of stopping at the first, plus what one render cannot
see (see `diagnose.static_problems`).
"""

from __future__ import annotations

import difflib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, cast

from jinja2 import Template, TemplateNotFound, TemplateSyntaxError, meta

from nurture.errors import Problem, TemplateError
from nurture.rendering.diagnose import (
    Source,
    balance_problem,
    exception_problem,
    mjml_problem,
    static_problems,
)
from nurture.rendering.frontmatter import FrontMatter, parse_front_matter
from nurture.rendering.markup import MjmlFailure, inject_preview, to_html
from nurture.rendering.sandbox import TemplateLoader, is_partial, make_environment, read_source
from nurture.rendering.text import html_to_text, rewrite_links


@dataclass(frozen=True)
class RenderedEmail:
    """One email for one contact, ready for a transport."""

    template: str
    subject: str
    preheader: str
    html: str
    text: str
    #: Set when the template as it is now failed and its last good version was used.
    fallback: Problem | None = None


class Renderable(Protocol):
    """A compiled front-matter value: a Jinja `Template`, or a `_Literal` for text without Jinja."""

    def render(self, *args: Any, **kwargs: Any) -> str: ...


@dataclass(frozen=True)
class _Literal:
    """A front-matter value without Jinja in it."""

    text: str

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.text


@dataclass
class _Email:
    """An email template compiled for one version of its files."""

    name: str
    path: str
    file: str
    stamp: tuple[int, int] | None
    twin_stamp: tuple[int, int] | None
    checked: float = 0.0  # time.monotonic() of the last stat
    front: FrontMatter = field(default_factory=FrontMatter)
    problems: list[Problem] = field(default_factory=list)
    body: Template | None = None
    subject: Renderable | None = None
    preheader: Renderable | None = None
    twin: Template | None = None


def _stamp(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size)


def _one_line(value: str) -> str:
    """Headers are one line: contact data must not smuggle a newline into them."""
    return " ".join(value.split())


class TemplateLibrary:
    """The email templates under `root` (a project's `templates/` folder).

    With `auto_reload` (the default) each render stats the template's files
    and recompiles what changed; turn it off in a fleet of workers that deploy
    templates with the code. `recheck_after` (seconds) spaces those checks
    out: a worker sees an edited template that much later, and saves three
    `stat` calls an email.
    """

    def __init__(self, root: Path, *, auto_reload: bool = True, recheck_after: float = 0.0) -> None:
        self.root = Path(root).resolve()
        self.environment = make_environment(
            self.root, auto_reload=auto_reload, recheck_after=recheck_after
        )
        self._auto_reload = auto_reload
        self._recheck_after = recheck_after
        self.loader = cast(TemplateLoader, self.environment.loader)
        self._prefix = str(self.root) + os.sep
        self._emails: dict[str, _Email] = {}
        #: Each template's version that last rendered, kept when an edit breaks it.
        self._good: dict[str, _Email] = {}

    # -- names -----------------------------------------------------------------

    def names(self) -> list[str]:
        """Email templates by name (`lead/welcome`), sorted; partials excluded."""
        found = []
        for path in self.root.rglob("*.mjml"):
            name = path.relative_to(self.root).with_suffix("").as_posix()
            if path.is_file() and not is_partial(name) and not name.startswith("."):
                found.append(name)
        return sorted(found)

    def exists(self, name: str) -> bool:
        try:
            name = self._normalize(name)
        except TemplateError:
            return False
        return not is_partial(name) and self.path_of(name).is_file()

    def path_of(self, name: str) -> Path:
        """`lead/welcome` → `<root>/lead/welcome.mjml` (whether or not it exists)."""
        return self.root.joinpath(*f"{name.removesuffix('.mjml')}.mjml".split("/"))

    def display(self, filename: str) -> str:
        """`/abs/project/templates/lead/a.mjml` → `templates/lead/a.mjml`."""
        if filename.startswith(self._prefix):
            return f"{self.root.name}/{filename[len(self._prefix) :].replace(os.sep, '/')}"
        return filename

    def _normalize(self, name: str) -> str:
        """Accept `lead/welcome` and `lead/welcome.mjml`; refuse paths that escape."""
        name = name.strip().removesuffix(".mjml")
        if not name or any(part in ("", ".", "..") for part in name.split("/")):
            raise TemplateError(Problem(f"{self.root.name}/{name}", None, "invalid template name"))
        return name

    # -- compile ---------------------------------------------------------------

    def _email(self, name: str) -> _Email:
        """The compiled template, recompiled only when one of its files changed."""
        name = self._normalize(name)
        email = self._emails.get(name)
        if email is not None and (not self._auto_reload or self._fresh(email)):
            return email
        email = self._compile(name, str(self.path_of(name)))
        self._emails[name] = email
        return email

    def _fresh(self, email: _Email) -> bool:
        moment = time.monotonic()
        if 0 <= moment - email.checked < self._recheck_after:
            return True
        email.checked = moment
        return email.stamp == _stamp(email.path) and email.twin_stamp == _stamp(
            email.path[:-5] + ".txt"
        )

    def _compile(self, name: str, path: str) -> _Email:
        file = self.display(path)
        if is_partial(name):
            message = f"{name!r} is a layout or partial (a path part starts with '_'), not an email"
            raise TemplateError(Problem(file, None, message))
        email = _Email(name, path, file, _stamp(path), _stamp(path[:-5] + ".txt"), time.monotonic())
        if email.stamp is None:
            hint = difflib.get_close_matches(name, self.names(), n=1)
            suffix = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise TemplateError(Problem(file, None, f"no email template {name!r}{suffix}"))
        try:
            email.front, email.problems = parse_front_matter(read_source(path, name), file)
        except TemplateSyntaxError as exc:
            email.problems.append(self._syntax_problem(exc, file))
            return email
        for key in ("subject", "preheader"):
            source = email.front.values.get(key)
            if source is not None:
                try:
                    setattr(email, key, self._front_template(source))
                except TemplateSyntaxError as exc:
                    email.problems.append(self._syntax_problem(exc, file, email.front.line_of(key)))
        templates = [("body", f"{name}.mjml")]
        if email.twin_stamp is not None:
            templates.append(("twin", f"{name}.txt"))
        for attribute, template_name in templates:
            try:
                self.loader.expire(template_name)
                setattr(email, attribute, self.environment.get_template(template_name))
            except TemplateSyntaxError as exc:
                email.problems.append(self._syntax_problem(exc, file))
        return email

    # -- render ----------------------------------------------------------------

    def render(
        self,
        name: str,
        context: Mapping[str, Any],
        *,
        rewrite_link: Callable[[str], str] | None = None,
    ) -> RenderedEmail:
        """Render `name` for one contact; raises `TemplateError` at the first fault.

        `rewrite_link` (click tracking) sees every http(s) link of the HTML
        part except the unsubscribe URL. The text part keeps the original
        URLs: readable, and what the reader expects to see.
        """
        email = self._email(name)
        try:
            rendered = self._render(email, context, rewrite_link)
        except TemplateError as exc:
            # An edit broke a template this process already sent: the email leaves as
            # it was before the edit (the caller logs the problem), never lost.
            good = self._good.get(email.name)
            if good is None or good is email:
                raise
            try:
                rendered = self._render(good, context, rewrite_link)
            except TemplateError:
                raise exc from None
            return replace(rendered, fallback=exc.problem)
        self._good[email.name] = email
        return rendered

    def _render(
        self,
        email: _Email,
        context: Mapping[str, Any],
        rewrite_link: Callable[[str], str] | None,
    ) -> RenderedEmail:
        if email.problems:
            raise TemplateError(min(email.problems))
        assert email.body is not None  # no problems: it compiled
        ctx = dict(context)
        subject, preheader = self._headers(email, ctx)
        html = self._html(email, self._run(email.body, ctx, email.file), preheader)
        text = self._text(email, ctx, html)
        if rewrite_link is not None:
            html = rewrite_links(html, rewrite_link, keep=str(ctx.get("unsubscribe_url", "")))
        return RenderedEmail(email.name, subject, preheader, html, text)

    def _headers(self, email: _Email, ctx: dict[str, Any]) -> tuple[str, str]:
        """Subject and preheader, also put in `ctx` for the layout to use."""
        ctx["subject"] = ctx["preheader"] = ""
        for key in ("subject", "preheader"):
            template = getattr(email, key)
            if template is not None:
                line = email.front.line_of(key)
                ctx[key] = _one_line(self._run(template, ctx, email.file, line))
        return ctx["subject"], ctx["preheader"]

    def _text(self, email: _Email, ctx: dict[str, Any], html: str) -> str:
        if email.twin is None:
            return html_to_text(html)
        text = self._run(email.twin, ctx, email.file[:-5] + ".txt").strip("\n")
        return text + "\n" if text else ""

    def _html(self, email: _Email, mjml: str, preheader: str) -> str:
        mjml = inject_preview(mjml, preheader)
        try:
            return to_html(mjml)
        except MjmlFailure as failure:
            problem = mjml_problem(self._sources(f"{email.name}.mjml"), email.file, mjml, failure)
            raise TemplateError(problem) from None

    def _front_template(self, source: str) -> Renderable:
        """A front-matter value; plain text skips Jinja (a render costs ~10 µs)."""
        if "{" not in source:
            return _Literal(source)
        return self.environment.from_string(source)

    def _run(
        self, template: Renderable, ctx: dict[str, Any], file: str, line: int | None = None
    ) -> str:
        try:
            return template.render(ctx)
        except Exception as exc:
            problem = self._problem(exc, file, line, ctx)
            if problem is None:
                raise
            raise TemplateError(problem) from exc

    def _problem(
        self,
        exc: Exception,
        file: str,
        line: int | None = None,
        ctx: Mapping[str, Any] | None = None,
    ) -> Problem | None:
        return exception_problem(
            exc,
            file=file,
            line=line,
            prefix=self._prefix,
            display=self.display,
            known_names=self._known_names(ctx or {}),
            template_names=self._all_files,
            contact=(ctx or {}).get("contact"),
        )

    def _syntax_problem(
        self, exc: TemplateSyntaxError, file: str, line: int | None = None
    ) -> Problem:
        problem = self._problem(exc, file, line)
        assert problem is not None  # a syntax error always is the template's fault
        return problem

    def _known_names(self, ctx: Mapping[str, Any]) -> set[str]:
        return {*ctx, *self.environment.globals, "subject", "preheader"}

    def _all_files(self) -> list[str]:
        loader = self.environment.loader
        return loader.list_templates() if loader is not None else []

    def _sources(self, start: str) -> list[Source]:
        """A template and every template it extends, includes or imports."""
        loader = self.environment.loader
        assert loader is not None
        found: list[Source] = []
        seen: set[str] = set()
        queue = [start]
        while queue:
            name = queue.pop(0)
            if name in seen:
                continue
            seen.add(name)
            try:
                source, filename, _ = loader.get_source(self.environment, name)
                tree = self.environment.parse(source)
            except (TemplateNotFound, TemplateSyntaxError):
                continue
            found.append((self.display(filename or name), source, tree))
            queue.extend(ref for ref in meta.find_referenced_templates(tree) if ref)
        return found

    # -- check -----------------------------------------------------------------

    def check(self, name: str, context: Mapping[str, Any]) -> list[Problem]:
        """Every problem of one email template with `context`; never raises for them."""
        try:
            email = self._email(name)
        except TemplateError as exc:
            return [exc.problem]
        problems = list(email.problems)
        ctx = dict(context)
        ctx["subject"] = ctx["preheader"] = ""
        for key in ("subject", "preheader"):
            template = getattr(email, key)
            if template is not None:
                try:
                    line = email.front.line_of(key)
                    ctx[key] = _one_line(self._run(template, ctx, email.file, line))
                except TemplateError as exc:
                    problems.append(exc.problem)
        sources = self._sources(f"{email.name}.mjml")
        if email.body is not None:
            try:
                mjml = self._run(email.body, ctx, email.file)
                html_to_text(self._html(email, mjml, ctx["preheader"]))
                balance = balance_problem(sources, email.file, mjml)
                if balance is not None:
                    problems.append(balance)
            except TemplateError as exc:
                problems.append(exc.problem)
        if email.twin is not None:
            try:
                self._text(email, ctx, "")
            except TemplateError as exc:
                problems.append(exc.problem)
        known = self._known_names(ctx)
        problems.extend(static_problems(sources, ctx, known))
        if email.twin is not None:
            problems.extend(static_problems(self._sources(f"{email.name}.txt"), ctx, known))
        return sorted(set(problems))

    def check_all(self, context: Mapping[str, Any]) -> list[Problem]:
        """Every problem of every template, partials included (syntax only)."""
        problems: set[Problem] = set()
        for name in self.names():
            problems.update(self.check(name, context))
        for name in self._all_files():
            if is_partial(name) and name.endswith((".mjml", ".txt")):
                try:
                    self.environment.get_template(name)
                except TemplateSyntaxError as exc:
                    problems.add(self._syntax_problem(exc, self.display(str(self.root / name))))
        return sorted(problems)
