"""Contacts import: a CSV or JSON Lines file into the contacts table.

What `nurture contacts import` and `simulate --contacts` run. The rules a user
can rely on:

- **Every row is accounted for.** A row is created, updated, unchanged or
  rejected with its line number and the reason
  (``contacts.csv:14: invalid email 'bob@'``). A rejected row changes nothing;
  the good rows around it go in.
- **Upsert by email.** Emails are stripped and lowercased, so
  ``"  Anne@Example.COM "`` and ``anne@example.com`` are one contact. A row
  for an existing contact sets only the columns it has a non-empty value
  for; custom properties are merged and tags are added, never removed. Empty
  cells never erase data.
- **Duplicates apply in file order**, exactly as if the file were imported
  one row at a time: a later row for the same email updates what the earlier
  one wrote (and counts as an update). Nothing is rejected for being a
  duplicate, because re-importing an export that grew is the common case.
- **A withdrawn consent stays withdrawn.** Importing an old CRM export must
  not resubscribe someone who opted out; such a row is applied without its
  consent columns and a warning says so.
- **Columns**: ``email`` (required), ``first_name``, ``last_name``,
  ``company``, ``stage``, ``timezone``, ``owner``, ``tags``, ``consent`` (or
  ``consent_status``) with ``consent_at`` (when), ``consent_source`` (where),
  ``consent_basis`` and ``consent_proof``; any other column is a custom
  property, coerced to its declared type (nurture.yaml ``properties:``) or
  kept as written. Headers are matched case-insensitively with spaces and
  punctuation as ``_`` ("First Name" is ``first_name``). Columns named after
  computed fields (``id``, ``score``, ``stage_index``, ``temperature``,
  ``created_at``) are ignored with a warning. Lists (``tags``, ``list``
  properties) are written ``a;b`` or ``a,b`` in CSV, as arrays in JSON Lines,
  where a ``properties`` object and a ``consent`` object
  (``{"status", "at", "source", "basis", "proof"}``) are also accepted.
- **Formats**: by extension (``.csv``; ``.jsonl``/``.ndjson``), else sniffed.
  CSV must be UTF-8 (a BOM is fine); the delimiter (``,`` ``;`` tab ``|``) is
  taken from the header line, since French Excel writes ``;``.

Rows are written in batches, one transaction each (one SELECT for the batch's
emails, one executemany per kind of write), which is what makes 100k rows a
matter of seconds on SQLite. Stage set or changed by an import is recorded in
`stage_history` with cause ``import``; the contact's `source` says which file
and line created it.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from nurture import clock, suppression
from nurture.consent import normalise_basis
from nurture.errors import NurtureError, Problem
from nurture.store import queries

DEFAULT_BATCH_SIZE = 2000

CONSENT_STATUSES: tuple[str, ...] = ("granted", "legitimate_interest", "withdrawn", "unknown")

_CONSENT_ALIASES: dict[str, str] = {
    **{status: status for status in CONSENT_STATUSES},
    **dict.fromkeys(("yes", "true", "1", "oui", "opt-in", "optin", "opted_in"), "granted"),
    **dict.fromkeys(("no", "false", "0", "non", "opt-out", "optout", "opted_out"), "withdrawn"),
    **dict.fromkeys(("unsubscribed", "revoked"), "withdrawn"),
    **dict.fromkeys(("legitimate interest", "legitimate-interest", "li"), "legitimate_interest"),
}

_BOOLEANS: dict[str, bool] = {
    **dict.fromkeys(("true", "yes", "y", "oui", "vrai", "1"), True),
    **dict.fromkeys(("false", "no", "n", "non", "faux", "0"), False),
}

#: Standard fields nurture computes; a property of that name could never be read.
COMPUTED_COLUMNS = frozenset({"id", "score", "stage_index", "temperature", "created_at"})

_TEXT_COLUMNS = ("first_name", "last_name", "company", "owner")
_COLUMN_ALIASES = {"consent_status": "consent"}

_CSV_DELIMITERS = (",", ";", "\t", "|")
_JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})

# A syntactic check, strict where real mail systems are: dot-atom local part
# (no quoted forms), host names of letters, digits and inner hyphens, a TLD
# of letters only (or punycode). Unicode letters are allowed (SMTPUTF8, IDN).
_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+"
    r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
)
_NOT_WORD = re.compile(r"\W+")
_LIST_SEPARATOR = re.compile(r"\s*[;,]\s*")


class ContactFileError(NurtureError):
    """The contacts file cannot be imported at all (encoding, header)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


class InvalidContact(NurtureError):
    """A contact record is invalid; the message lists every reason."""


@dataclass
class ImportReport:
    """What an import did, row by row accountable.

    ``created + updated + unchanged + len(rejected) == total``. `warnings` are
    about rows or columns applied only in part (an ignored column, a withdrawn
    consent kept). `stage_changes` is ``(contact_id, from_stage, to_stage)``
    for each stage set by the import, for the engine to react to.
    """

    file: str
    total: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    stage_changes: list[tuple[int, str | None, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.file}: {self.total} rows: {self.created} created, {self.updated} updated, "
            f"{self.unchanged} unchanged, {len(self.rejected)} rejected"
        )


@dataclass(frozen=True, slots=True)
class ContactInput:
    """One valid record: the email, the columns it sets, what it merges."""

    email: str
    fields: dict[str, Any]
    properties: dict[str, Any]
    tags: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # computed-field columns that were dropped


# --- values -------------------------------------------------------------------


@lru_cache(maxsize=1024)
def column_name(raw: str) -> str:
    """``"First Name "`` → ``first_name``: how headers and keys are matched."""
    return _NOT_WORD.sub("_", raw.strip().lower()).strip("_")


def normalise_email(value: str) -> str:
    return value.strip().lower()


def is_valid_email(email: str) -> bool:
    """Syntax only (no DNS): `email` must already be normalised."""
    if len(email) > 254 or _EMAIL.fullmatch(email) is None:
        return False
    return len(email.rpartition("@")[0]) <= 64


@lru_cache(maxsize=1)
def _timezones() -> dict[str, str]:
    return {name.lower(): name for name in available_timezones()}


@lru_cache(maxsize=4096)
def canonical_timezone(value: str) -> str | None:
    """The IANA name for `value` (any case), or None if there is no such zone."""
    name = _timezones().get(value.lower())
    if name is not None:
        return name
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return value


def _clean(value: Any) -> Any:
    """Empty means absent: None, and strings blank after stripping."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _datetime(value: Any) -> datetime:
    """ISO date or date-time; a naive one is UTC, a bare date is midnight UTC."""
    if not isinstance(value, str):
        raise ValueError
    parsed = datetime.fromisoformat(value)
    return clock.as_utc(parsed)


def _list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [item for item in (_clean(item) for item in value) if item is not None]
    return [item for item in _LIST_SEPARATOR.split(_text(value)) if item]


def _number(value: Any) -> int | float:
    if isinstance(value, bool):
        raise ValueError
    if isinstance(value, int | float):
        number: int | float = value
    else:
        text = str(value).replace("\u00a0", "").replace("\u202f", "").replace(" ", "")
        if "_" in text:
            raise ValueError
        if "," in text and "." not in text and text.count(",") == 1:
            text = text.replace(",", ".")  # 12,5 (French decimal comma)
        try:
            number = int(text)
        except ValueError:
            number = float(text)
    if isinstance(number, float) and not math.isfinite(number):
        raise ValueError
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _BOOLEANS:
        return _BOOLEANS[value.lower()]
    raise ValueError


def _date(value: Any) -> str:
    """Dates are kept as ISO strings (JSON has no date type)."""
    if not isinstance(value, str):
        raise ValueError
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        return datetime.fromisoformat(value).date().isoformat()


_COERCE: dict[str, tuple[Callable[[Any], Any], str]] = {
    "string": (_text, "a string"),
    "number": (_number, "a number"),
    "boolean": (_boolean, "a boolean: true/false, yes/no, oui/non, 1/0"),
    "date": (_date, "a date YYYY-MM-DD"),
    "list": (_list, "a list"),
}


# --- records ------------------------------------------------------------------


class ContactParser:
    """Turns one record (column → raw value) into a `ContactInput`, or says why not.

    Shared by the file import and anything else that upserts contacts from
    outside (the HTTP API), so both accept and refuse the same things.
    """

    def __init__(self, stages: Sequence[str], properties: Mapping[str, str] | None = None) -> None:
        self._stages = tuple(stages)
        self._stage_by_key = {stage.lower(): stage for stage in stages}
        self._declared: dict[str, tuple[str, str]] = {}
        for name, kind in (properties or {}).items():
            if kind not in _COERCE:
                raise ValueError(f"property {name!r}: unknown type {kind!r}")
            self._declared[column_name(name)] = (name, kind)

    def parse(self, record: Mapping[str, Any]) -> ContactInput:
        """Raises `InvalidContact` with every problem of the record, joined by ``; ``."""
        errors: list[str] = []
        fields: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        tags: tuple[str, ...] = ()
        ignored: list[str] = []
        email: str | None = None
        bad_email = False
        for raw_key, raw_value in record.items():
            value = _clean(raw_value)
            if value is None:
                continue
            key = column_name(raw_key)
            key = _COLUMN_ALIASES.get(key, key)
            if key == "email":
                if isinstance(value, str) and is_valid_email(normalise_email(value)):
                    email = normalise_email(value)
                else:
                    bad_email = True
                    errors.append(f"invalid email {value!r}")
            elif key in _TEXT_COLUMNS:
                fields[key] = _text(value)
            elif key == "stage":
                stage = self._stage_by_key.get(_text(value).lower())
                if stage is None:
                    expected = ", ".join(self._stages)
                    errors.append(f"unknown stage {value!r} (expected one of: {expected})")
                else:
                    fields["stage"] = stage
            elif key == "timezone":
                zone = canonical_timezone(value) if isinstance(value, str) else None
                if zone is None:
                    errors.append(f"unknown timezone {value!r}")
                else:
                    fields["timezone"] = zone
            elif key == "consent":
                if isinstance(value, Mapping):
                    self._consent_object(value, fields, errors)
                else:
                    self._consent_status(value, fields, errors)
            elif key == "consent_at":
                self._consent_at(value, fields, errors)
            elif key == "consent_source":
                fields[key] = _text(value)
            elif key == "consent_basis":
                fields[key] = normalise_basis(_text(value))
            elif key == "consent_proof":
                fields[key] = value
            elif key == "tags":
                tags = tuple(str(tag) for tag in _list(value))
            elif key == "properties" and isinstance(value, Mapping):
                for name, item in value.items():
                    self._property(str(name), _clean(item), properties, errors)
            elif key in COMPUTED_COLUMNS:
                ignored.append(key)
            elif key:
                self._property(key, value, properties, errors)
        if email is None and not bad_email:
            errors.insert(0, "missing email")
        if errors:
            raise InvalidContact("; ".join(errors))
        assert email is not None
        return ContactInput(email, fields, properties, tags, tuple(ignored))

    def _consent_status(self, value: Any, fields: dict[str, Any], errors: list[str]) -> None:
        status = _CONSENT_ALIASES.get(_text(value).strip().lower())
        if status is None:
            expected = ", ".join(CONSENT_STATUSES)
            errors.append(f"unknown consent {value!r} (expected one of: {expected})")
        else:
            fields["consent_status"] = status

    def _consent_at(self, value: Any, fields: dict[str, Any], errors: list[str]) -> None:
        try:
            fields["consent_at"] = _datetime(value)
        except ValueError:
            errors.append(f"invalid consent_at {value!r} (expected an ISO date or date-time)")

    def _consent_object(
        self, value: Mapping[str, Any], fields: dict[str, Any], errors: list[str]
    ) -> None:
        for name, item in value.items():
            item = _clean(item)
            if item is None:
                continue
            if name == "status":
                self._consent_status(item, fields, errors)
            elif name == "at":
                self._consent_at(item, fields, errors)
            elif name == "source":
                fields["consent_source"] = _text(item)
            elif name == "basis":
                fields["consent_basis"] = normalise_basis(_text(item))
            elif name == "proof":
                fields["consent_proof"] = item
            else:
                errors.append(f"unknown consent field {name!r}")

    def _property(
        self, key: str, value: Any, properties: dict[str, Any], errors: list[str]
    ) -> None:
        if value is None:
            return
        declared = self._declared.get(column_name(key))
        if declared is None:
            properties[key] = value
            return
        name, kind = declared
        coerce, expected = _COERCE[kind]
        try:
            properties[name] = coerce(value)
        except ValueError:
            errors.append(f"invalid {name} {value!r} (expected {expected})")


# --- files --------------------------------------------------------------------

_Item = tuple[int, Mapping[str, Any] | str]  # (line, record or rejection reason)


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
        name = _COLUMN_ALIASES.get(name, name)
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


# --- import -------------------------------------------------------------------


def import_contacts(
    db: Session | Callable[[], Session],
    path: str | Path,
    *,
    stages: Sequence[str],
    properties: Mapping[str, str] | None = None,
    source: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_batch: BatchHook | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportReport:
    """Import the contacts in `path`; see the module docstring for the rules.

    `db` is a session factory (each batch its own session) or a `Session`,
    which is then committed after each batch: do not pass one holding work you
    are not ready to commit. `stages` is the project's ladder, `properties` its
    declared custom properties (name → type). `source` labels where contacts
    came from (default ``import:<file name>``; the line is appended).
    `on_progress(done, total)` is called after each batch with rows processed
    and the rows expected (exact unless quoted CSV values span lines).
    `on_batch(session, batch)` runs inside each batch's transaction with the
    contacts it created or changed and its ``(contact_id, from, to)`` stage
    moves, so the engine scores and enrolls contacts in the same commit that
    creates them: no crash can leave a new lead imported but never nurtured. A new contact without a stage starts on
    the first stage of the ladder.
    Raises `ContactFileError` before writing anything if the file as a whole
    is unusable (not UTF-8, no email column).
    """
    path = Path(path)
    label = str(path)
    report = ImportReport(file=label)
    text = _decode(path, label)
    jsonl = _is_jsonl(path, text)
    records = _jsonl_records(text) if jsonl else _csv_records(text, label, report.warnings)
    expected = _estimate_rows(text, header=not jsonl)
    parser = ContactParser(stages, properties)
    writer = _BatchWriter(db, label, source or f"import:{path.name}", stages[0], on_batch)
    warned: set[str] = set()

    batch: list[tuple[int, ContactInput]] = []
    for line, record in records:
        report.total += 1
        if isinstance(record, str):
            report.rejected.append(Problem(label, line, record))
            continue
        try:
            contact = parser.parse(record)
        except InvalidContact as exc:
            report.rejected.append(Problem(label, line, str(exc)))
            continue
        for name in contact.ignored:
            if name not in warned:
                warned.add(name)
                message = f"column {name!r} is computed by nurture; ignored"
                report.warnings.append(Problem(label, line, message))
        batch.append((line, contact))
        if len(batch) >= batch_size:
            writer.write(batch, report)
            batch = []
            if on_progress is not None:
                on_progress(report.total, max(expected, report.total))
    if batch:
        writer.write(batch, report)
    if on_progress is not None:
        on_progress(report.total, report.total)
    return report


@dataclass(frozen=True)
class ImportedBatch:
    """What one committed-together batch changed, for the engine to react to."""

    contact_ids: list[int]  # created or updated
    stage_changes: list[tuple[int, str | None, str]]  # (contact_id, from, to)


#: Called inside each import batch's transaction.
BatchHook = Callable[[Session, ImportedBatch], None]


@dataclass
class _Outcome:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    warnings: list[Problem] = field(default_factory=list)
    stage_changes: list[tuple[int, str | None, str]] = field(default_factory=list)


class _BatchWriter:
    """Writes batches of valid rows, one transaction per batch."""

    def __init__(
        self,
        db: Session | Callable[[], Session],
        label: str,
        source: str,
        first_stage: str,
        on_batch: BatchHook | None,
    ) -> None:
        self._first_stage = first_stage
        self._on_batch = on_batch
        self._db = db
        self._label = label
        self._source = source

    @contextmanager
    def _session(self) -> Iterator[Session]:
        if isinstance(self._db, Session):
            yield self._db
        else:
            with self._db() as session:
                yield session

    def write(self, batch: Sequence[tuple[int, ContactInput]], report: ImportReport) -> None:
        # A concurrent writer may insert one of these emails between our SELECT
        # and INSERT; the unique index refuses it and the retry sees it as existing.
        for attempt in range(3):
            with self._session() as session:
                try:
                    outcome = self._apply(session, batch)
                    session.commit()
                except IntegrityError:
                    session.rollback()
                    if attempt == 2:
                        raise
                    continue
                except BaseException:
                    session.rollback()
                    raise
            report.created += outcome.created
            report.updated += outcome.updated
            report.unchanged += outcome.unchanged
            report.warnings.extend(outcome.warnings)
            report.stage_changes.extend(outcome.stage_changes)
            return

    def _apply(self, session: Session, batch: Sequence[tuple[int, ContactInput]]) -> _Outcome:
        now = clock.now()
        outcome = _Outcome()
        existing = queries.existing_contacts_by_email(session, {c.email for _, c in batch})
        state: dict[str, dict[str, Any]] = {}  # email → the contact as this batch leaves it
        new: dict[str, dict[str, Any]] = {}  # email → row to insert (same dict as in state)
        dirty: dict[str, set[str]] = {}  # email of an existing contact → columns changed
        moves: list[tuple[str, str | None, str, int]] = []  # email, from, to, line

        for line, contact in batch:
            email = contact.email
            current = state.get(email)
            if current is None and email in existing:
                current = state[email] = existing[email]
            if current is None:
                row = self._new_row(contact, line, now)
                state[email] = new[email] = row
                outcome.created += 1
                if row["stage"] is not None:
                    moves.append((email, None, row["stage"], line))
                continue
            changes = self._changes(current, contact, line, outcome)
            if not changes:
                outcome.unchanged += 1
                continue
            outcome.updated += 1
            if "stage" in changes:
                moves.append((email, current["stage"], changes["stage"], line))
            current.update(changes)
            if email not in new:
                dirty.setdefault(email, set()).update(changes)

        self._mark_suppressed(session, new, now, outcome)
        queries.insert_contacts(session, list(new.values()))
        ids = queries.contact_ids_by_email(session, set(new))
        queries.update_contacts(
            session,
            (
                {"id": state[email]["id"], "updated_at": now}
                | {column: state[email][column] for column in columns}
                for email, columns in dirty.items()
            ),
        )
        history = []
        for email, from_stage, to_stage, line in moves:
            contact_id = ids[email] if email in ids else state[email]["id"]
            outcome.stage_changes.append((contact_id, from_stage, to_stage))
            history.append(
                {
                    "contact_id": contact_id,
                    "from_stage": from_stage,
                    "to_stage": to_stage,
                    "at": now,
                    "cause": "import",
                    "details": {"source": f"{self._source}:{line}"},
                }
            )
        queries.insert_stage_history(session, history)
        if self._on_batch is not None:
            changed = [ids[e] for e in new] + [state[e]["id"] for e in dirty]
            if changed:
                self._on_batch(session, ImportedBatch(changed, list(outcome.stage_changes)))
        return outcome

    def _mark_suppressed(
        self, session: Session, new: Mapping[str, dict[str, Any]], now: datetime, outcome: _Outcome
    ) -> None:
        """New contacts whose address is on the suppression list (an erased person
        imported again, an address suppressed in advance) go in suppressed."""
        for email, reason in suppression.reasons_for(session, new).items():
            row = new[email]
            row["suppressed_at"], row["suppression_reason"] = now, reason
            line = int(row["source"].rpartition(":")[2])
            message = f"{email} is on the suppression list ({reason}): imported, never emailed"
            outcome.warnings.append(Problem(self._label, line, message))

    def _new_row(self, contact: ContactInput, line: int, now: datetime) -> dict[str, Any]:
        fields = contact.fields
        origin = f"{self._source}:{line}"
        proof = fields.get("consent_proof")
        if proof is None and "consent_status" in fields:
            proof = {"source": origin}
        return {
            "email": contact.email,
            **{column: fields.get(column) for column in _TEXT_COLUMNS},
            "timezone": fields.get("timezone"),
            "stage": fields.get("stage") or self._first_stage,
            "score": 0.0,
            "consent_status": fields.get("consent_status", "unknown"),
            "consent_basis": fields.get("consent_basis"),
            "consent_source": fields.get("consent_source"),
            "consent_at": fields.get("consent_at"),
            "consent_proof": proof,
            "properties": dict(contact.properties),
            "tags": list(dict.fromkeys(contact.tags)),
            "source": origin,
            "suppressed_at": None,
            "suppression_reason": None,
            "soft_bounces": 0,
            "created_at": now,
            "updated_at": now,
        }

    def _changes(
        self, current: Mapping[str, Any], contact: ContactInput, line: int, outcome: _Outcome
    ) -> dict[str, Any]:
        fields = contact.fields
        wanted = fields.get("consent_status")
        if current["consent_status"] == "withdrawn" and wanted not in (None, "withdrawn"):
            outcome.warnings.append(
                Problem(
                    self._label,
                    line,
                    f"consent stays withdrawn (the file says {wanted!r}); "
                    "only the contact can give it again",
                )
            )
            fields = {k: v for k, v in fields.items() if not k.startswith("consent_")}
        changes = {key: value for key, value in fields.items() if current[key] != value}
        if "consent_status" in changes and "consent_proof" not in fields:
            changes["consent_proof"] = {"source": f"{self._source}:{line}"}
        if contact.properties:
            merged = current["properties"] | contact.properties
            if merged != current["properties"]:
                changes["properties"] = merged
        if contact.tags:
            tags = list(dict.fromkeys([*current["tags"], *contact.tags]))
            if tags != current["tags"]:
                changes["tags"] = tags
        return changes


def upsert_contacts(
    sessions: Callable[[], Session],
    contacts: Sequence[ContactInput],
    *,
    first_stage: str,
    source: str,
    on_batch: BatchHook | None = None,
) -> ImportReport:
    """Write already-parsed contacts as one import batch: one transaction, same rules.

    For callers that validate records themselves with `ContactParser` (the HTTP
    API). Report lines (and the ``source:<n>`` origin of created contacts) are
    1-based positions in `contacts`.
    """
    report = ImportReport(file=source, total=len(contacts))
    if contacts:
        writer = _BatchWriter(sessions, source, source, first_stage, on_batch)
        writer.write(list(enumerate(contacts, start=1)), report)
    return report


__all__ = [
    "CONSENT_STATUSES",
    "ContactFileError",
    "ContactInput",
    "ContactParser",
    "ImportReport",
    "InvalidContact",
    "import_contacts",
    "upsert_contacts",
]
