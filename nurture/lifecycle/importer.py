"""Contacts import: a CSV or JSON Lines file into the contacts table.

What `nurture contacts import` and `simulate --contacts` run. The rules a user
can rely on:

- **Every row is accounted for.** A row is created, updated, unchanged or
  rejected with its line number and the reason
  (``contacts.csv:14: invalid email 'bob@'``). A rejected row changes nothing;
  the good rows around it go in.
- **Upsert by email.** Emails are taken in their one form
  (`nurture.contacts.parsing.canonical_email`: stripped, lower-cased, IDNA
  and Unicode NFC), so ``"  Anne@Example.COM "`` and ``anne@example.com`` are
  one contact, and so are ``x@xn--bcher-kva.example`` and ``x@bücher.example``. A row
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
  taken from the header line, since French Excel writes ``;``. Reading the
  file is `nurture.contacts.files`; this module accounts for and writes rows.

Rows are written in batches, one transaction each (one SELECT for the batch's
emails, one executemany per kind of write), which is what makes 100k rows a
matter of seconds on SQLite. A stage set or changed by an import goes through
the engine's stage-move path (`on_batch`) with cause ``import`` and the file
and line in its details; the contact's `source` says which file and line
created it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

import nurture.clock as clock
import nurture.delivery.suppression as suppression
from nurture.contacts.files import ContactFileError, read_records
from nurture.contacts.parsing import (
    TEXT_COLUMNS,
    ContactInput,
    ContactParser,
    InvalidContact,
    unknown_column_message,
)
from nurture.errors import Conflict, Problem, ValueRefused
from nurture.store import contacts as queries

DEFAULT_BATCH_SIZE = 2000


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


# --- import -------------------------------------------------------------------


def import_contacts(
    db: Session | Callable[[], Session],
    path: str | Path,
    *,
    stages: Sequence[str],
    properties: Mapping[str, str] | None = None,
    source: str | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    on_batch: BatchHook,
    batch_size: int = DEFAULT_BATCH_SIZE,
    strict: bool = False,
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
    contacts it created or changed and the stages its rows set: the engine's
    one stage-move path records them (history, `stage.changed`, the handoff,
    exits, enrollment) and re-scores the contacts in the same commit that
    creates them, so no crash can leave a new lead imported but never
    nurtured, and no import can bypass the handoff. A new contact without a
    stage starts on the first stage of the ladder.
    A column that is neither a standard field nor a declared property is a
    warning (once, with a did-you-mean); `strict` rejects the rows holding one.
    Raises `ContactFileError` before writing anything if the file as a whole
    is unusable (not UTF-8, no email column).
    """
    path = Path(path)
    label = str(path)
    report = ImportReport(file=label)
    records, expected, typed = read_records(path, label, report.warnings)
    parser = ContactParser(stages, properties, typed=typed)
    writer = _BatchWriter(db, label, source or f"import:{path.name}", stages[0], on_batch)
    warned: set[str] = set()

    batch: list[tuple[int, ContactInput]] = []
    for line, record in records:
        report.total += 1
        if isinstance(record, str):
            report.rejected.append(Problem(label, line, record))
            continue
        try:
            contact = parser.parse(record, strict=strict)
        except InvalidContact as exc:
            report.rejected.append(Problem(label, line, str(exc)))
            continue
        for name in contact.ignored:
            if name not in warned:
                warned.add(name)
                message = f"column {name!r} is computed by nurture; ignored"
                report.warnings.append(Problem(label, line, message))
        for name, hint in contact.unknown:
            if name not in warned:
                warned.add(name)
                report.warnings.append(Problem(label, line, unknown_column_message(name, hint)))
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
class StageChange:
    """A stage set by an import row: `source` is ``<source>:<line>``."""

    contact_id: int
    from_stage: str | None
    to_stage: str
    source: str


@dataclass(frozen=True)
class ImportedBatch:
    """What one committed-together batch changed, for the engine to react to."""

    contact_ids: list[int]  # created or updated
    stage_changes: list[StageChange]


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
        on_batch: BatchHook,
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
                except Conflict:
                    session.rollback()
                    if attempt == 2:
                        raise
                    continue
                except ValueRefused as refused:
                    session.rollback()
                    if len(batch) == 1:  # this row is the one: refused, the others go in
                        report.rejected.append(Problem(self._label, batch[0][0], str(refused)))
                        return
                    for row in batch:
                        self.write([row], report)
                    return
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
        moved = []
        for email, from_stage, to_stage, line in moves:
            contact_id = ids[email] if email in ids else state[email]["id"]
            outcome.stage_changes.append((contact_id, from_stage, to_stage))
            moved.append(StageChange(contact_id, from_stage, to_stage, f"{self._source}:{line}"))
        changed = [ids[e] for e in new] + [state[e]["id"] for e in dirty]
        if changed:
            self._on_batch(session, ImportedBatch(changed, moved))
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
            **{column: fields.get(column) for column in TEXT_COLUMNS},
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
    on_batch: BatchHook,
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
    "ContactFileError",
    "ImportReport",
    "ImportedBatch",
    "import_contacts",
    "upsert_contacts",
]
