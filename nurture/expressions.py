"""Conditions written by marketers, compiled once in Jinja2's sandbox.

Every `when:`, `match:` and `exit.when` in a project goes through
`compile_expression`, so one environment decides what user code may touch.
The names an expression reads are extracted at compile time: `validate` checks
them against the contact fields the project knows, instead of finding a typo
when the first contact reaches the step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, nodes
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from nurture.errors import NurtureError

#: Names an expression may read; anything else is reported by `validate`.
EXPRESSION_NAMES = frozenset({"contact", "event", "now", "stage_index"})
#: `in_segment('NAME')`: whether the contact is in a segment (workflow conditions only).
SEGMENT_FUNCTION = "in_segment"

#: Filters whose `attribute=` names what they read of each item.
_ATTRIBUTE_FILTERS = frozenset(
    {"map", "attr", "selectattr", "rejectattr", "sort", "groupby", "sum", "unique", "min", "max"}
)


class GuardedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, closed to item access too: ``x['__class__']`` and
    ``map(attribute='__class__')`` are refused like ``x.__class__``.

    Jinja's sandbox checks attribute names, but `x[key]` tries `x[key]` first
    and only checks the name when that fails; an object whose `__getitem__`
    reads attributes (a contact view, a record) handed out its internals.
    Every name starting with ``_`` is refused, whatever the syntax.
    """

    def getitem(self, obj: Any, argument: Any) -> Any:
        if isinstance(argument, str) and argument.startswith("_"):
            return self.unsafe_undefined(obj, argument)
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        """Refused at once, not an undefined that fails only when printed: a
        condition would otherwise read it as false and go on."""
        raise SecurityError(
            f"{attribute!r} is not allowed (names starting with '_' are internal)"
            if attribute.startswith("_")
            else f"access to {attribute!r} of {type(obj).__name__} is not allowed"
        )


def private_names(tree: nodes.Node) -> list[tuple[int, str]]:
    """(line, name) of every ``_``-prefixed name an expression or template reads by
    attribute, item or a filter's `attribute=`: what `validate` reports."""
    found = [(n.lineno, n.attr) for n in tree.find_all(nodes.Getattr) if n.attr.startswith("_")]
    for item in tree.find_all(nodes.Getitem):
        key = item.arg.value if isinstance(item.arg, nodes.Const) else None
        if isinstance(key, str) and key.startswith("_"):
            found.append((item.lineno, key))
    for call in tree.find_all(nodes.Filter):
        if call.name not in _ATTRIBUTE_FILTERS:
            continue
        for value in [*call.args, *(k.value for k in call.kwargs)]:
            text = value.value if isinstance(value, nodes.Const) else None
            if isinstance(text, str) and any(p.startswith("_") for p in text.split(".")):
                found.append((call.lineno, text))
    return sorted(found)


_ENV = GuardedSandbox()


class ExpressionError(NurtureError):
    """An expression could not be evaluated."""


@dataclass(frozen=True)
class Expression:
    """A compiled condition, with what it reads kept for static checks."""

    source: str
    names: frozenset[str]
    attributes: frozenset[tuple[str, str]]
    calls: frozenset[tuple[str, str]]  # (function, constant first argument)
    _function: Callable[..., Any] = field(compare=False, repr=False)

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        try:
            return self._function(**context)
        except SecurityError as exc:
            raise ExpressionError(f"{self.source!r} is not allowed: {exc}") from None
        except (UndefinedError, TypeError, ValueError, ZeroDivisionError) as exc:
            raise ExpressionError(f"{self.source!r} failed: {exc}") from None

    def test(self, context: Mapping[str, Any]) -> bool:
        return bool(self.evaluate(context))


def compile_expression(source: str) -> Expression:
    """Compile `source`; raises `ExpressionSyntaxError` with the offending detail."""
    if not isinstance(source, str) or not source.strip():
        raise ExpressionSyntaxError("an expression must be a non-empty string")
    try:
        function = _ENV.compile_expression(source, undefined_to_none=False)
        tree = _ENV.parse("{{ (" + source + ") }}")
    except TemplateSyntaxError as exc:
        raise ExpressionSyntaxError(f"invalid expression {source!r}: {exc.message}") from None
    private = private_names(tree)
    if private:
        raise ExpressionSyntaxError(
            f"invalid expression {source!r}: {private[0][1]!r} is not allowed "
            "(names starting with '_' are internal)"
        )
    names = frozenset(n.name for n in tree.find_all(nodes.Name) if n.ctx == "load")
    attributes = frozenset(
        (getattr_node.node.name, getattr_node.attr)
        for getattr_node in tree.find_all(nodes.Getattr)
        if isinstance(getattr_node.node, nodes.Name)
    )
    calls = frozenset(
        (call.node.name, call.args[0].value)
        for call in tree.find_all(nodes.Call)
        if isinstance(call.node, nodes.Name)
        and call.args
        and isinstance(call.args[0], nodes.Const)
        and isinstance(call.args[0].value, str)
    )
    return Expression(source, names, attributes, calls, function)


class ExpressionSyntaxError(NurtureError):
    """An expression does not compile."""
