"""Reading a contacts file: CSV or JSON Lines into numbered records.

The file side of `nurture.lifecycle.importer`: each record comes with its line number,
or, for a line that cannot be a record, the reason as text, so the importer
can account for every row. Formats by extension (``.csv``;
``.jsonl``/``.ndjson``), else sniffed. CSV must be UTF-8 (a BOM is fine);
the delimiter (``,`` ``;`` tab ``|``) is taken from the header line, since
French Excel writes ``;``. Headers are matched as `contact_input.column_name`
normalises them; a header without an ``email`` column, or with one column
twice, stops the import before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from nurture.contacts.parsing import COLUMN_ALIASES, column_name
from nurture.errors import NurtureError, Problem

_CSV_DELIMITERS = (",", ";", "\t", "|")
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
_Item = tuple[int, Mapping[str, Any] | str]  # (line, record or rejection reason)


class ContactFileError(NurtureError):
    """The contacts file cannot be imported at all (encoding, header)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def read_records(path: Path, label: str, warnings: list[Problem]) -> tuple[Iterator[_Item], int]:
    """The file's records (lazily) and how many rows to expect, for progress.

    Raises `ContactFileError` at once if the file is not UTF-8; a CSV header
    without an ``email`` column raises when the records are first read.
    Column warnings (an unnamed column) are appended to `warnings`.
    """
    text = _decode(path, label)
    jsonl = _is_jsonl(path, text)
    records = _jsonl_records(text) if jsonl else _csv_records(text, label, warnings)
    return records, _estimate_rows(text, header=not jsonl)


def _decode(path: Path, label: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContactFileError(
            Problem(label, line, 'not UTF-8 text; save the file as UTF-8 (Excel: "CSV UTF-8")')
        ) from None


def _is_jsonl(path: Path, text: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return True
    if suffix == ".csv":
        return False
    return text.lstrip().startswith("{")


def _estimate_rows(text: str, *, header: bool) -> int:
    lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    return max(lines - (1 if header else 0), 0)


def _jsonl_records(text: str) -> Iterator[_Item]:
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"malformed JSON: {exc.msg} (column {exc.colno})"
            continue
        if not isinstance(record, dict):
            yield number, f"expected a JSON object, got {type(record).__name__}"
            continue
        yield number, record


def _csv_header(
    names: list[str], label: str, line: int, warnings: list[Problem]
) -> list[str | None]:
    header: list[str | None] = []
    seen: set[str] = set()
    for position, raw in enumerate(names, start=1):
        name = column_name(raw)
        name = COLUMN_ALIASES.get(name, name)
        if not name:
            if raw.strip():
                warnings.append(Problem(label, line, f"column {raw!r} has no usable name; ignored"))
            elif position < len(names):
                warnings.append(Problem(label, line, f"column {position} has no name; ignored"))
            header.append(None)
            continue
        if name in seen:
            raise ContactFileError(Problem(label, line, f"duplicate column {name!r}"))
        seen.add(name)
        header.append(name)
    if "email" not in seen:
        columns = ", ".join(name for name in header if name) or "none"
        raise ContactFileError(Problem(label, line, f"no 'email' column (columns: {columns})"))
    return header


def _csv_records(text: str, label: str, warnings: list[Problem]) -> Iterator[_Item]:
    first_line = text.split("\n", 1)[0]
    delimiter = max(_CSV_DELIMITERS, key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    header: list[str | None] | None = None
    while True:
        start = reader.line_num + 1
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if header is None:
                message = f"malformed CSV header: {exc}"
                raise ContactFileError(Problem(label, start, message)) from None
            yield start, f"malformed CSV: {exc}"
            continue
        if not any(value.strip() for value in values):
            continue
        if header is None:
            header = _csv_header(values, label, start, warnings)
            continue
        if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
            yield start, f"{len(values)} fields, but the header has {len(header)}"
            continue
        yield (
            start,
            {name: value for name, value in zip(header, values, strict=False) if name is not None},
        )
