"""Reading a contacts file: CSV or JSON Lines into numbered records.

The file side of `nurture.lifecycle.importer`: each record comes with its line number,
or, for a line that cannot be a record, the reason as text, so the importer
can account for every row. Formats by extension (``.csv``;
``.jsonl``/``.ndjson``), else sniffed. CSV must be UTF-8 (a BOM is fine);
the delimiter (``,`` ``;`` tab ``|``) is taken from the header line, since
French Excel writes ``;``. A row with more or fewer fields than the header is
refused (trailing empty fields aside): a value left out shifts the others. Headers are matched as `contact_input.column_name`
normalises them; a header without an ``email`` column, or with one column
twice, stops the import before anything is written.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping
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


def read_records(
    path: Path, label: str, warnings: list[Problem]
) -> tuple[Iterator[_Item], int, bool]:
    """The file's records (lazily, a line at a time), how many rows to expect, and
    whether it is JSON Lines (typed values) rather than CSV (text).

    Raises `ContactFileError` at once if the file is not UTF-8 (a first pass
    reads it in chunks, so memory stays flat whatever its size); a CSV header
    without an ``email`` column raises when the records are first read.
    Column warnings (an unnamed column) are appended to `warnings`.
    """
    lines, first = _check_utf8(path, label)
    jsonl = _is_jsonl(path, first)
    handle = path.open(encoding="utf-8-sig", newline="")
    records = _jsonl_records(handle) if jsonl else _csv_records(handle, first, label, warnings)
    return _closing(records, handle), max(lines - (0 if jsonl else 1), 0), jsonl


def _closing(records: Iterator[_Item], handle: io.TextIOBase) -> Iterator[_Item]:
    with handle:
        yield from records


def _check_utf8(path: Path, label: str) -> tuple[int, str]:
    """How many lines the file has, and its first line; `ContactFileError` if any
    byte is not UTF-8 (with the line it is on)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines = 0
    first = ""
    last = b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            try:
                text = decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                line = lines + chunk[: exc.start].count(b"\n") + 1
                raise ContactFileError(
                    Problem(
                        label, line, 'not UTF-8 text; save the file as UTF-8 (Excel: "CSV UTF-8")'
                    )
                ) from None
            if lines == 0 and not first:
                first = text
            elif lines == 0 and "\n" not in first:
                first += text
            lines += chunk.count(b"\n")
            last = chunk
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ContactFileError(
            Problem(label, lines + 1, "not UTF-8 text: the file ends inside a character")
        ) from None
    if last and not last.endswith(b"\n"):
        lines += 1
    return lines, first.split("\n", 1)[0]


def _is_jsonl(path: Path, first_line: str) -> bool:
    suffix = path.suffix.lower()
    if suffix in _JSONL_SUFFIXES:
        return True
    if suffix == ".csv":
        return False
    return first_line.lstrip().startswith("{")


def _jsonl_records(lines: Iterable[str]) -> Iterator[_Item]:
    for number, line in enumerate(lines, start=1):
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


def _csv_records(
    lines: Iterable[str], first_line: str, label: str, warnings: list[Problem]
) -> Iterator[_Item]:
    delimiter = max(_CSV_DELIMITERS, key=first_line.count)
    if first_line.count(delimiter) == 0:
        delimiter = ","
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
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
            # Columns up to the last named one: an unnamed trailing column may be left off.
            needed = max(i for i, name in enumerate(header) if name) + 1
            continue
        if len(values) > len(header) and any(v.strip() for v in values[len(header) :]):
            yield start, f"{len(values)} fields, but the header has {len(header)}"
            continue
        if len(values) < needed:
            # Which value is missing cannot be known: the rest may have shifted a column.
            yield (
                start,
                (
                    f"{len(values)} fields, but the header has {len(header)}: a value is missing "
                    f"(an empty one still needs its {delimiter!r})"
                ),
            )
            continue
        yield (
            start,
            {name: value for name, value in zip(header, values, strict=False) if name is not None},
        )
