"""The plain-text part derived from the final HTML; link rewriting; open pixel.

Regex passes rather than an HTML parser: MRML's output is regular (quoted
attributes, no `>` inside them), and the send path renders thousands of emails
a second. Each pass is one C-level `re.sub` over the document: about 0.15 ms
for a typical 10 KB email, where `html.parser` alone needs 0.5 ms just to
tokenize it (and html2text, the usual choice, is GPL).

What it keeps: paragraphs, line breaks, list items, table rows (cells joined
by " | "), links as `text (url)` (an image link shows the image's `alt`).
What it drops: `<head>`, styles, comments (so Outlook's `<!--[if mso]>`
tables), and anything styled `display:none` (the hidden preheader, already
shown as the inbox line). Whitespace is Unicode's: `mj-spacer` fills its
block with a hair space, which must not leave an empty paragraph behind. A
carousel reads as its images one by one (each a link if it has one); its
thumbnails, in-page links that only switch the image shown, are dropped.
"""

from __future__ import annotations

import html
import itertools
import re
from collections.abc import Callable

# Private-use characters mark structure until the last step; they cannot come
# from the markup itself (every tag is gone by then) and are harmless if a
# contact's data happens to hold one.
_PARAGRAPH = "\ue001"
_LINE = "\ue002"
_CELL = "\ue003"

_BODY = re.compile(r"<body\b", re.I)
_HIDDEN = re.compile(r"display\s*:\s*none")
_TAGS = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)\b[^>]*?(/?)>")
_VOID = frozenset({"img", "br", "hr", "input", "meta", "link", "wbr", "col", "source", "area"})
_ANCHOR = re.compile(r"<a\b([^>]*)>(.*?)</a\s*>", re.S | re.I)
_HREF = re.compile(r"""\bhref\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)
_IMAGE_ALT = re.compile(r"""<img\b[^>]*?\balt\s*=\s*(?:"([^"]*)"|'([^']*)')[^>]*>""", re.I)
_ORDERED = re.compile(r"<ol\b[^>]*>.*?</ol\s*>", re.S | re.I)
_ITEM = re.compile(r"<li\b[^>]*>", re.I)
#: List items, line breaks and rules in one pass (each `re.I` scan of a body costs).
_MARKS = re.compile(r"<(li|br|hr)\b[^>]*>", re.I)
_MARK_TEXT = {"li": f"{_LINE}- ", "br": _LINE, "hr": f"{_PARAGRAPH}----{_PARAGRAPH}"}


def _skipped(name: str) -> str:
    """`<name …>…</name>`, the first closing tag: `.*?` unrolled, which sre runs
    in a tight loop instead of trying the closing tag at every character."""
    return rf"{name}\b[^<]*(?:<(?!/{name}\s*>)[^<]*)*</{name}\s*>"


_SKIPPED = ("style", "script", "title", "head", "template", "noscript")
#: The common block tags first (MRML's tables and divs); then comments (`.*?-->`
#: unrolled likewise: Outlook's conditional comments are a quarter of a body)
#: and the elements skipped whole.
_BLOCK_TAG = (
    r"<(?:/?(?:t(?:able|body|head|foot|[rdh])|div|p|h[1-6]|ul|ol|blockquote"
    r"|section|article|header|footer|center|pre|d[ltd]|figure|figcaption|caption)\b[^>]*>"
    r"|!--[^-]*(?:-(?!->)[^-]*)*-->" + "".join(f"|{_skipped(name)}" for name in _SKIPPED) + ")"
)
#: A run of block tags, comments and skipped elements (style, script, head…):
#: MRML nests a dozen block tags around each paragraph, one match takes them all.
_BLOCK_RUN = re.compile(f"{_BLOCK_TAG}(?:\\s*{_BLOCK_TAG})*", re.I)
#: In a run, anything but table-row/cell tags ends a paragraph.
_NOT_CELL = re.compile(r"<(?!/?t[rdh]\b)", re.I)
_ROW = re.compile(r"</?tr\b", re.I)
_CELL_RUN = re.compile(f" ?{_CELL}[ {_CELL}]*")
_TAG = re.compile(r"<!--.*?-->|</?[a-zA-Z][^>]*>", re.S)
#: Any Unicode space (`str.isspace`): nbsp, and the hair space of `mj-spacer`.
_SPACE = re.compile(r"\s+")
_PARAGRAPHS = re.compile(f"[\\s{_PARAGRAPH}{_CELL}]*{_PARAGRAPH}[\\s{_PARAGRAPH}{_CELL}]*")
#: MRML hides every carousel image but the first until a radio button is checked.
_CAROUSEL_HIDDEN = re.compile(
    r'(<div class="mj-carousel-image\b[^"]*")\s+style="display:none;mso-hide:all;"', re.I
)


def _value(match: re.Match[str] | None) -> str | None:
    if match is None:
        return None
    raw = next(group for group in match.groups() if group is not None)
    return html.unescape(raw) if "&" in raw else raw


def _shown_url(href: str) -> str | None:
    lowered = href.lower()
    if lowered.startswith(("http://", "https://")):
        return href
    if lowered.startswith(("mailto:", "tel:")):
        return href.split(":", 1)[1].split("?", 1)[0]
    return None


def _link(match: re.Match[str]) -> str:
    """`<a href="u">label</a>` → `label (u)`; an image link shows its alt."""
    attributes, inner = match.groups()
    href = _value(_HREF.search(attributes))
    image = False
    if "<" in inner:
        if href is not None and href.startswith("#") and not _TAG.sub("", inner).strip():
            return ""  # an in-page link around an image: a carousel thumbnail, say
        image = "<img" in inner.lower()
        inner = _IMAGE_ALT.sub(lambda m: f" {m.group(1) or m.group(2) or ''} ", inner)
        inner = _TAG.sub(" ", inner)
    label = " ".join(html.unescape(inner).split())
    url = _shown_url(href) if href else None
    if url and url != label and url.split("://", 1)[-1] != label:
        label = f"{label} ({url})" if label else url
    label = html.escape(label, quote=False)
    return f" {label} " if image else label  # images side by side are not one word


def _block_run(match: re.Match[str]) -> str:
    """A paragraph break, a table row break, or a table cell separator."""
    run = match.group(0)
    if _NOT_CELL.search(run):
        return _PARAGRAPH
    return _LINE if _ROW.search(run) else _CELL


def _number_items(match: re.Match[str]) -> str:
    counter = itertools.count(1)
    return _ITEM.sub(lambda _: f"{_LINE}{next(counter)}. ", match.group(0))


def _drop_hidden(document: str) -> str:
    """Remove every element styled `display:none`, with all it contains."""
    kept: list[str] = []
    position = 0
    for found in _HIDDEN.finditer(document):
        start = document.rfind("<", 0, found.start())
        if start < position or ">" in document[start : found.start()]:
            continue  # inside an element already dropped, or not in a tag
        end, depth, name = len(document), 0, ""
        for tag in _TAGS.finditer(document, start):
            closing, tag_name, self_closing = tag.groups()
            name = name or tag_name.lower()
            if tag_name.lower() != name:
                continue
            if name in _VOID:
                end = tag.end()
                break
            depth += 0 if self_closing else -1 if closing else 1
            if depth <= 0:
                end = tag.end()
                break
        kept.append(document[position:start])
        position = end
    kept.append(document[position:])
    return "".join(kept)


def html_to_text(document: str) -> str:
    """Readable plain text for the `text/plain` part of `document`."""
    body = _BODY.search(document)
    if body:
        document = document[body.start() :]
    if "mj-carousel-image" in document:
        document = _CAROUSEL_HIDDEN.sub(r"\1", document)
    if _HIDDEN.search(document):
        document = _drop_hidden(document)
    document = _ANCHOR.sub(_link, document)
    if "<ol" in document or "<OL" in document:
        document = _ORDERED.sub(_number_items, document)
    document = _MARKS.sub(lambda m: _MARK_TEXT[m.group(1).lower()], document)
    document = _BLOCK_RUN.sub(_block_run, document)
    document = _SPACE.sub(" ", html.unescape(_TAG.sub("", document)))
    paragraphs = []
    for paragraph in _PARAGRAPHS.split(document):
        lines = (part.strip(f" {_CELL}") for part in paragraph.split(_LINE))
        text = "\n".join(
            _CELL_RUN.sub(" | ", line) if _CELL in line else line for line in lines if line
        )
        if text:
            paragraphs.append(text)
    return "\n\n".join(paragraphs) + "\n" if paragraphs else ""


_ANCHOR_HREF = re.compile(r"""(<a\s[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.I)


def rewrite_links(document: str, rewrite: Callable[[str], str], *, keep: str = "") -> str:
    """Pass every http(s) `href` of an `<a>` through `rewrite` (click tracking).

    `mailto:`, `tel:`, `#anchors` and the `keep` URL (the unsubscribe link,
    which must work without a tracking hop) are left untouched.
    """

    def replace(match: re.Match[str]) -> str:
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        url = html.unescape(raw) if "&" in raw else raw
        if not url.lower().startswith(("http://", "https://")) or url == keep:
            return match.group(0)
        return f'{match.group(1)}"{html.escape(rewrite(url), quote=True)}"'

    return _ANCHOR_HREF.sub(replace, document)


def add_open_pixel(document: str, url: str) -> str:
    """Append a 1×1 tracking image at the end of the body (open tracking).

    Added by the send pipeline after `render`, since the URL carries a signed
    per-send token that rendering knows nothing about.
    """
    pixel = (
        f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" '
        'style="display:block;width:1px;height:1px;border:0;" />'
    )
    end = document.rfind("</body>")
    if end < 0:
        return document + pixel
    return document[:end] + pixel + document[end:]
