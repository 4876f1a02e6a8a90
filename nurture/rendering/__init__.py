"""Email templates: front matter, Jinja2 sandbox, MJML (MRML), text part.

A project's `templates/` folder holds email templates (`lead/welcome` is
`templates/lead/welcome.mjml`, YAML front matter then MJML with Jinja) and,
under any path part starting with `_`, layouts and partials they extend or
include. `TemplateLibrary` compiles each file version once and renders it per
contact; every fault comes back as `TemplateError` with `templates/...:line`.

Modules: `frontmatter` (the YAML block), `sandbox` (environment and loader),
`markup` (MJML → HTML and tag lint), `text` (text part, links, open pixel),
`diagnose` (exceptions → problems, static checks), `library` (the public
class), `context` (what templates read), `preview` (the preview page).
"""

from __future__ import annotations

from nurture.rendering.context import (
    SAMPLE_UNSUBSCRIBE_URL,
    SAMPLE_VIEW_IN_BROWSER_URL,
    email_context,
    sample_context,
)
from nurture.rendering.frontmatter import FRONT_MATTER_KEYS
from nurture.rendering.library import RenderedEmail, TemplateLibrary
from nurture.rendering.preview import preview_page
from nurture.rendering.text import add_open_pixel, html_to_text, rewrite_links

__all__ = [
    "FRONT_MATTER_KEYS",
    "SAMPLE_UNSUBSCRIBE_URL",
    "SAMPLE_VIEW_IN_BROWSER_URL",
    "RenderedEmail",
    "TemplateLibrary",
    "add_open_pixel",
    "email_context",
    "html_to_text",
    "preview_page",
    "rewrite_links",
    "sample_context",
]
