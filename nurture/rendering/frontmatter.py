"""The YAML block at the top of an email template: subject and preheader.

An email template opens with a `---` fenced YAML block. Jinja never sees it:
`strip_front_matter` swaps its lines for blank lines, so every line number
Jinja reports is still a line of the file the marketer edits. Values are read
with PyYAML's base loader, so every scalar stays text (`subject: Yes` is the
word "Yes", not True) and a key is reported with its own line.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

import yaml
from yaml.nodes import MappingNode, ScalarNode

from nurture.errors import Problem

#: Keys an email template's front matter may set.
FRONT_MATTER_KEYS: tuple[str, ...] = ("subject", "preheader")

_FENCE = "---"
_CLOSERS = ("---", "...")
#: Plain (unquoted) scalars YAML means as "no value".
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(frozen=True)
class FrontMatter:
    """The values of a template's front matter and the file line of each."""

    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int:
        return self.lines.get(key, 1)


def _fence_end(lines: list[str]) -> int | None:
    """Index of the closing fence line, or None when the block never closes.

    Only called when the first line is an opening fence.
    """
    for index in range(1, len(lines)):
        if lines[index].rstrip() in _CLOSERS:
            return index
    return None


def _opens(lines: list[str]) -> bool:
    return bool(lines) and lines[0].lstrip("\ufeff").rstrip() == _FENCE


def strip_front_matter(source: str) -> str:
    """`source` with its front matter lines blanked; unchanged without one.

    An unclosed block is left alone: `parse_front_matter` reports it, and the
    body is never rendered.
    """
    lines = source.split("\n")
    if not _opens(lines):
        return source
    end = _fence_end(lines)
    if end is None:
        return source
    return "\n" * (end + 1) + "\n".join(lines[end + 1 :])


def parse_front_matter(source: str, file: str) -> tuple[FrontMatter, list[Problem]]:
    """Read the front matter of an email template, reporting every problem."""
    lines = source.split("\n")
    if not _opens(lines):
        return FrontMatter(), [
            Problem(
                file,
                1,
                "an email template must start with front matter: a '---' line, "
                "'subject: ...', and a closing '---' line",
            )
        ]
    end = _fence_end(lines)
    if end is None:
        return FrontMatter(), [
            Problem(file, 1, "front matter opened here is never closed by '---'")
        ]
    try:
        root = yaml.compose("\n".join(lines[1:end]), Loader=yaml.BaseLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 1
        reason = getattr(exc, "problem", None) or str(exc)
        return FrontMatter(), [Problem(file, line, f"front matter is not valid YAML: {reason}")]
    if root is None:
        return FrontMatter(), [Problem(file, 1, "front matter is empty: 'subject' is required")]
    if not isinstance(root, MappingNode):
        return FrontMatter(), [
            Problem(file, 2, "front matter must be 'key: value' lines with a 'subject'")
        ]
    return _read_mapping(root, file)


def _read_mapping(root: MappingNode, file: str) -> tuple[FrontMatter, list[Problem]]:
    problems: list[Problem] = []
    values: dict[str, str] = {}
    key_lines: dict[str, int] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 2
        key = str(key_node.value)
        if key not in FRONT_MATTER_KEYS:
            problems.append(Problem(file, line, _unknown_key(key), key))
            continue
        if key in key_lines:
            problems.append(
                Problem(file, line, f"{key!r} is set twice (first on line {key_lines[key]})", key)
            )
            continue
        key_lines[key] = line
        if not isinstance(value_node, ScalarNode):
            problems.append(Problem(file, line, f"{key!r} must be text", key))
            continue
        value = str(value_node.value)
        if value_node.style is None and value.strip() in _NULLS:
            continue
        values[key] = value
    if "subject" not in values and "subject" not in key_lines:
        problems.append(Problem(file, 1, "front matter has no 'subject'", "subject"))
    elif "subject" not in values and not any(p.path == "subject" for p in problems):
        problems.append(Problem(file, key_lines["subject"], "'subject' is empty", "subject"))
    return FrontMatter(values, key_lines), problems


def _unknown_key(key: str) -> str:
    known = ", ".join(repr(k) for k in FRONT_MATTER_KEYS)
    close = difflib.get_close_matches(key, FRONT_MATTER_KEYS, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {known}"
    return f"unknown front-matter key {key!r} ({hint})"
