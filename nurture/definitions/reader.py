"""YAML with line numbers, and without YAML 1.1 surprises.

PyYAML's safe loader reads `no`, `on` and `off` as booleans (the Norway
problem: `country: NO` becomes False, an `on:` key becomes True) and keeps the
last of two duplicate keys silently. Marketers hit both. This reader resolves
scalars by YAML 1.2 core rules, reports duplicate keys, and remembers the line
of every mapping key and list item so the parser can say `file:line: message`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from nurture.errors import Problem


class LineDict(dict[str, Any]):
    """A mapping that knows its own line and the line of each key."""

    line: int
    key_lines: dict[str, int]

    def line_of(self, key: str) -> int:
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence that knows its own line and the line of each item."""

    line: int
    item_lines: list[int]

    def line_of(self, index: int) -> int:
        return self.item_lines[index] if index < len(self.item_lines) else self.line


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema: true/false, null/~, ints and floats; nothing else."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^[-+]?[0-9]+$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$"),
    list("-+0123456789."),
)


class _Loader(
    yaml.reader.Reader,
    yaml.scanner.Scanner,
    yaml.parser.Parser,
    yaml.composer.Composer,
    _Resolver,
):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


def load_yaml(text: str, file: str) -> tuple[Any, list[Problem]]:
    """Parse one YAML document. A syntax error comes back as a problem, not a raise."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        line, message = explain_yaml_error(exc)
        return None, [Problem(file, line, f"invalid YAML: {message}")]
    finally:
        loader.dispose()
    if node is None:
        return None, []
    problems: list[Problem] = []
    return _convert(node, file, problems), problems


def _line(mark: Any) -> int | None:
    return mark.line + 1 if mark is not None else None


def _text_of(mark: Any) -> str:
    """The source line a mark points into ('' when PyYAML kept no buffer)."""
    buffer = getattr(mark, "buffer", None)
    if not isinstance(buffer, str):
        return ""
    start = buffer.rfind("\n", 0, mark.pointer) + 1
    end = buffer.find("\n", mark.pointer)
    return buffer[start : end if end >= 0 else None].rstrip("\x00")


_FOUND = re.compile(r"but found '(.*)'$")
_BAD_START = re.compile(r"found character '(.+?)' that cannot start any token")
_ALIAS = re.compile(r"found undefined alias '(.*)'")


def explain_yaml_error(exc: yaml.MarkedYAMLError) -> tuple[int | None, str]:
    """The line to fix and what to do there, for PyYAML's parser-speak.

    "expected <block end>, but found '?'" means a line is indented out of step
    with its neighbours; a marketer needs that said, and the line where the
    trouble starts (an unclosed quote is reported at the end of the file).
    """
    problem = exc.problem or ""
    context = exc.context or ""
    line, opened = _line(exc.problem_mark or exc.context_mark), _line(exc.context_mark)
    if problem.startswith("expected <block end>"):
        found = _FOUND.search(problem)
        if found and found.group(1) == "<scalar>" and line == opened:
            return line, (
                "text after a closing quote: to put a quote inside a quoted value, double it "
                "('L''offre') or quote with the other kind (\"L'offre\")"
            )
        if _text_of(exc.problem_mark).lstrip().startswith("-") and not re.match(
            r"^\s*-(\s|$)", _text_of(exc.problem_mark)
        ):
            return line, "a list item needs a space after its '-' ('- wait: 2d')"
        block = "list" if "collection" in context else "mapping"
        return line, (
            f"this line is not indented like the rest of the {block} that starts at line "
            f"{opened}: the keys of one mapping, and the '- ' of one list, start in the same "
            "column (indent with spaces)"
        )
    if problem == "mapping values are not allowed here":
        return line, (
            "a ': ' inside a value: put the value in quotes "
            '(description: "Bonjour : le guide"), or indent this line under its key'
        )
    if problem == "could not find expected ':'":
        return opened, (
            "this line is neither 'key: value' nor a '- ' list item: add the ':' after the key "
            "(or, if it continues the line above, indent it more)"
        )
    if "quoted scalar" in context:
        return opened, (
            "a quote opened on this line is never closed: close it (inside '…', write a ' as '')"
        )
    if "flow sequence" in context or "flow mapping" in context:
        close = "]" if "sequence" in context else "}"
        return opened, (
            f"the {'[' if close == ']' else '{'} opened on this line is not closed with "
            f"'{close}' before line {line}, or two of its items lack a ',' between them"
        )
    if (bad := _BAD_START.match(problem)) is not None:
        char = bad.group(1)
        if char in ("\t", "\\t"):  # PyYAML writes the tab escaped
            return line, "a tab: YAML indents with spaces only; replace the tab with spaces"
        return line, f"a value cannot start with '{char}': put it in quotes ('{char}…')"
    if (alias := _ALIAS.match(problem)) is not None:
        return line, (
            f"'*{alias.group(1)}' reads as a reference to an anchor '&{alias.group(1)}' that is "
            "not defined: put the value in quotes"
        )
    if context == "while parsing a flow node" and problem.endswith("found '-'"):
        return line, (
            "a '- ' item inside '[ ]': write a list either as [a, b] on one line or as "
            "'- ' lines, not both"
        )
    if "single document" in context:
        return line, "a second document ('---'): a file holds one; remove the '---' line"
    return line, f"{problem or context} (check the indentation, quotes and brackets here)"


def _convert(node: Node, file: str, problems: list[Problem]) -> Any:
    line = node.start_mark.line + 1
    if isinstance(node, MappingNode):
        result = LineDict()
        result.line = line
        result.key_lines = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, file, problems)
            key_line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                key = str(key)
            if key in result:
                problems.append(
                    Problem(
                        file,
                        key_line,
                        f"duplicate key '{key}' (first at line {result.key_lines[key]})",
                    )
                )
                continue
            result[key] = _convert(value_node, file, problems)
            result.key_lines[key] = key_line
        return result
    if isinstance(node, SequenceNode):
        items = LineList(_convert(item, file, problems) for item in node.value)
        items.line = line
        items.item_lines = [item.start_mark.line + 1 for item in node.value]
        return items
    assert isinstance(node, ScalarNode)
    return _scalar(node)


def _scalar(node: ScalarNode) -> Any:
    value: str = node.value
    tag = node.tag
    if tag == "tag:yaml.org,2002:null":
        return None
    if tag == "tag:yaml.org,2002:bool":
        return value.lower() == "true"
    if tag == "tag:yaml.org,2002:int":
        return int(value)
    if tag == "tag:yaml.org,2002:float":
        return float(value)
    return value


def line_of(container: Any, key: str | int, default: int | None = None) -> int | None:
    """The line of `container[key]`, or of the container, or `default`."""
    if isinstance(container, LineDict) and isinstance(key, str):
        return container.line_of(key)
    if isinstance(container, LineList) and isinstance(key, int):
        return container.line_of(key)
    return getattr(container, "line", default)
