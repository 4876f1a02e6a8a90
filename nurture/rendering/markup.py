"""MJML to HTML with MRML (mjml-python), and finding where MJML went wrong.

MRML is fast (tens of microseconds for an email) and lenient: it drops an
unknown `<mj-sectio>` with its content and accepts `</mj-colum>`, and when it
does fail it says little ("unexpected end of stream in root template"), with
at best a byte range in the *rendered* MJML. So `lint_tags` walks the `mj-*`
tags itself: `check` uses it to report what MRML would silently swallow, and
the error path uses it to turn MRML's message into a file and a line.

`mj-include` is refused: it would read files outside the sandbox, and Jinja's
`{% include %}` already does the job with line numbers.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from markupsafe import escape
from mjml import mjml2html

#: Every element MJML 4 defines.
MJML_TAGS = frozenset(
    [
        "mjml",
        "mj-head",
        "mj-body",
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-raw",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
        "mj-include",
    ]
)

_TAG = re.compile(r"<(/?)(mjml|mj-[a-zA-Z0-9-]*)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>")
_ANY_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9:-]*)\b((?:[^>\"']|\"[^\"]*\"|'[^']*')*?)(/?)>")
_BARE_LT = re.compile(r"<(?![a-zA-Z/!])")
#: Elements MRML parses as void (exact, lowercase: it rejects an unclosed `<BR>`).
_VOID = frozenset(
    "area base br col embed hr img input link meta param source track wbr".split()  # noqa: SIM905
)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_JINJA = re.compile(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", re.S)
_POSITION = re.compile(r" at position (\d+):(\d+)")
_HEAD = re.compile(r"<mj-head\b[^>]*>")
_ROOT = re.compile(r"<mjml\b[^>]*>")


class MjmlFailure(Exception):
    """MRML refused the MJML; `offset` is a character offset when it gave one."""

    def __init__(self, message: str, offset: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True)
class TagProblem:
    """One finding of `lint_tags`: an unknown `mj-*` tag or an unbalanced one, at an offset.

    `nurture.rendering.diagnose` turns it into a `file:line` problem.
    """

    offset: int
    message: str
    #: "unknown" problems are certain; "balance" ones may come from Jinja branches.
    kind: str


def to_html(mjml: str) -> str:
    """MJML source to HTML; raises `MjmlFailure`. Comments are dropped.

    `disable_comments` strips the author's `<!-- -->` notes (they would reach
    every inbox) but keeps Outlook's conditional comments.
    """
    try:
        return str(mjml2html(mjml, disable_comments=True))
    except Exception as exc:
        raise _failure(mjml, exc) from None
    except BaseException as exc:  # a Rust panic inside MRML (pyo3 PanicException)
        if type(exc).__name__ != "PanicException":
            raise
        raise MjmlFailure(f"MJML could not be rendered ({exc})", None) from None


def _failure(mjml: str, exc: Exception) -> MjmlFailure:
    message = str(exc)
    match = _POSITION.search(message)
    offset = None
    if match:
        byte_offset = int(match.group(1))
        offset = len(mjml.encode("utf-8")[:byte_offset].decode("utf-8", errors="ignore"))
        message = message[: match.start()] + message[match.end() :]
    message = message.replace(" in root template", "")
    if "unable to load included template" in message:
        message = 'mj-include is not supported: use {% include "_partials/..." %}'
    return MjmlFailure(message, offset)


def inject_preview(mjml: str, preheader: str) -> str:
    """Add `<mj-preview>` with the preheader unless the MJML already has one.

    A layout may place `<mj-preview>{{ preheader }}</mj-preview>` itself; this
    covers the ones that do not, so a front-matter preheader always reaches
    the inbox line.
    """
    if not preheader or "<mj-preview" in mjml:
        return mjml
    preview = f"<mj-preview>{escape(preheader)}</mj-preview>"
    head = _HEAD.search(mjml)
    if head:
        return mjml[: head.end()] + preview + mjml[head.end() :]
    root = _ROOT.search(mjml)
    if root:
        return mjml[: root.end()] + f"<mj-head>{preview}</mj-head>" + mjml[root.end() :]
    return mjml


def _blank(match: re.Match[str]) -> str:
    """Same length, same newlines: offsets and lines survive."""
    return re.sub(r"[^\n]", " ", match.group(0))


def lint_tags(text: str, *, jinja: bool = False, html: bool = False) -> list[TagProblem]:
    """Unknown `mj-*` elements, `mj-include`, and the first unbalanced tag.

    With `jinja=True` the text is a template source: Jinja constructs are
    blanked first (keeping offsets) so `{{ }}` in attributes is harmless.
    With `html=True` HTML tags count for the balance too (MRML rejects an
    unclosed `<p>` or `<BR>` inside `<mj-text>`), and so does a bare `<`.
    """
    text = _COMMENT.sub(_blank, text)
    if jinja:
        text = _JINJA.sub(_blank, text)
    problems: list[TagProblem] = []
    stack: list[tuple[str, int]] = []
    balanced = True
    for match in (_ANY_TAG if html else _TAG).finditer(text):
        closing, name, _, self_closing = match.groups()
        is_mjml = name == "mjml" or name.startswith("mj-")
        if is_mjml and not closing:
            problem = _element_problem(name)
            if problem:
                problems.append(TagProblem(match.start(), problem, "unknown"))
        if not balanced or self_closing or (not is_mjml and name in _VOID):
            continue
        if not closing:
            stack.append((name, match.start()))
        elif stack and stack[-1][0] == name:
            stack.pop()
        elif not is_mjml and stack and not stack[-1][0].startswith("mj"):
            stack.pop()  # MRML lets any end tag close the open HTML element
        elif is_mjml or any(open_name == name for open_name, _ in stack):
            balanced = False
            if any(open_name == name for open_name, _ in stack):
                open_name, offset = stack[-1]
                message = f"<{open_name}> is not closed before </{name}>"
            else:
                offset, message = match.start(), f"</{name}> closes no open <{name}>"
            problems.append(TagProblem(offset, message, "balance"))
    if balanced and stack:
        open_name, offset = stack[-1]
        problems.append(TagProblem(offset, f"<{open_name}> is never closed", "balance"))
    if html and balanced:
        bare = _BARE_LT.search(text)
        if bare:
            message = "a '<' that starts no tag: write it as &lt;"
            problems.append(TagProblem(bare.start(), message, "balance"))
    return problems


def _element_problem(name: str) -> str | None:
    if name == "mj-include":
        return 'mj-include is not supported: use {% include "_partials/..." %}'
    if name in MJML_TAGS:
        return None
    close = difflib.get_close_matches(name, MJML_TAGS, n=1)
    hint = f" (did you mean <{close[0]}>?)" if close else ""
    return f"unknown MJML element <{name}>{hint}"


def line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def line_text(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)].strip()


def tag_text(text: str, offset: int) -> str:
    match = _ANY_TAG.match(text, offset)
    return match.group(0) if match else line_text(text, offset)
