"""What a value from outside must be before it may be stored: checked at the edge, item by item.

JSON and CSV can carry what the databases cannot hold, or hold differently:
PostgreSQL refuses NUL in text and `Infinity` in jsonb; a lone surrogate
(``"\\ud800"``) has no UTF-8 encoding at all; ``1e400`` parses as an infinite
float; a date in year 1 at +14:00 has no UTC instant Python can represent.
One such value in a batch used to fail the whole transaction, and every
retry of it. Each door (the API, the imports, the webhooks, the forms) asks
`value_problem` of every item before anything is written, so a bad item is
refused alone, with where and why, and its neighbours go in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

#: Integers beyond a signed 64-bit column (and beyond what a float keeps exactly).
MAX_INT = 2**63 - 1
#: How deep a JSON value may nest.
MAX_DEPTH = 32
#: The instants nurture stores: before 1900 or after 9999 is a typo or an attack.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, tzinfo=UTC)


def text_problem(value: str) -> str | None:
    """Why a string cannot be stored as text in every database we support, or None."""
    if "\x00" in value:
        return "text must not contain NUL (\\u0000) characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "text must be valid Unicode (no lone surrogates such as \\ud800)"
    return None


def value_problem(value: Any, where: str = "", depth: int = 0) -> str | None:
    """Why `value` (a JSON-like value: text, numbers, booleans, null, lists, objects)
    cannot be stored faithfully, as ``where: why``, or None. The first problem found."""
    prefix = f"{where}: " if where else ""
    if isinstance(value, str):
        problem = text_problem(value)
        return prefix + problem if problem else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        if not -MAX_INT <= value <= MAX_INT:
            return f"{prefix}number out of range (at most 19 digits)"
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return f"{prefix}number out of range (infinite or not a number)"
        return None
    if depth >= MAX_DEPTH:
        return f"{prefix}nested more than {MAX_DEPTH} levels deep"
    if isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{where}.{key}" if where else str(key)
            if not isinstance(key, str):
                return f"{name}: object keys must be text"
            problem = text_problem(key)
            if problem:
                return f"{where or 'a key'}: {problem}"
            problem = value_problem(item, name, depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            problem = value_problem(item, f"{where}[{index}]", depth + 1)
            if problem:
                return problem
        return None
    if isinstance(value, datetime):
        return moment_problem(value, where)
    return None


def moment_problem(moment: datetime, where: str = "") -> str | None:
    """Why an aware `moment` cannot be stored (no UTC instant, or out of 1900–9999)."""
    prefix = f"{where}: " if where else ""
    try:
        utc = moment.astimezone(UTC) if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        utc + timedelta(days=1)  # the range the code computes in (deadlines, windows)
    except OverflowError:
        return f"{prefix}time out of range (years 1900 to 9999)"
    if not EARLIEST <= utc <= LATEST:
        return f"{prefix}time out of range (years 1900 to 9999)"
    return None


def shown(value: Any, limit: int = 60) -> str:
    """`repr(value)` for an error message, cut to `limit` characters: a reason never
    echoes a large input back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
