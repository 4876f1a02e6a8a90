"""One contact record, as a file row or an API body gives it: validated and typed.

The rules `nurture contacts import` documents (see `nurture.lifecycle.importer`) for a
single record: the email checked and normalised, standard columns, consent
with its aliases, custom properties coerced to their declared type, computed
fields refused. The importer, the contacts API and the web pages share it.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import nurture.clock as clock
from nurture.addresses import canonical_email, email_problem
from nurture.contacts.values import moment_problem, shown, value_problem
from nurture.errors import NurtureError

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

TEXT_COLUMNS = ("first_name", "last_name", "company", "owner")
#: The longest text a person-facing field may hold: names and companies go into
#: subject lines and the sales inbox; longer is a mistake or an attack.
TEXT_LIMITS = {"first_name": 100, "last_name": 100, "company": 200, "consent_source": 200}
COLUMN_ALIASES = {"consent_status": "consent"}
#: Standard fields that hold text: from JSON, anything else is refused (not stringified).
_TEXT_ONLY = frozenset(
    {*TEXT_COLUMNS, "stage", "timezone", "consent_at", "consent_source", "consent_basis"}
)
_TEXT_ONLY_CONSENT = frozenset({"status", "at", "source", "basis"})
#: Every column name with a meaning of its own (custom properties aside).
KNOWN_COLUMNS = (
    "email",
    *TEXT_COLUMNS,
    "stage",
    "timezone",
    "consent",
    "consent_at",
    "consent_source",
    "consent_basis",
    "consent_proof",
    "tags",
    "properties",
)


def unknown_column_message(name: str, hint: str | None, *, strict: bool = False) -> str:
    """What an import says of a column that is neither standard nor declared."""
    meant = f" (did you mean {hint!r}?)" if hint else ""
    if strict:
        return f"unknown column {name!r}{meant}: declare it under properties: in nurture.yaml"
    return (
        f"column {name!r} is neither a standard field nor a declared property{meant}; "
        "kept as an undeclared property (--strict refuses it)"
    )


_NOT_WORD = re.compile(r"\W+")
_LIST_SEPARATOR = re.compile(r"\s*[;,]\s*")


class InvalidContact(NurtureError):
    """A contact record is invalid; the message lists every reason."""


@dataclass(frozen=True, slots=True)
class ContactInput:
    """One valid record: the email, the columns it sets, what it merges."""

    email: str
    fields: dict[str, Any]
    properties: dict[str, Any]
    tags: tuple[str, ...] = ()
    ignored: tuple[str, ...] = ()  # computed-field columns that were dropped
    #: Columns neither standard nor declared, kept as undeclared properties, each with
    #: the name it may have meant to be (a typo'd `stge`), or None.
    unknown: tuple[tuple[str, str | None], ...] = ()


# --- values -------------------------------------------------------------------


@lru_cache(maxsize=1024)
def column_name(raw: str) -> str:
    """``"First Name "`` → ``first_name``: how headers and keys are matched."""
    return _NOT_WORD.sub("_", raw.strip().lower()).strip("_")


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
    if moment_problem(parsed) is not None:
        raise ValueError
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


# --- consent bases ------------------------------------------------------------


#: Lawful bases (GDPR art. 6): consent, or legitimate interest (B2B outreach).
BASES = ("consent", "legitimate_interest")


_BASIS_ALIASES: dict[str, str] = {
    **dict.fromkeys(("consent", "consentement", "opt-in", "optin", "granted"), "consent"),
    **dict.fromkeys(
        (
            "legitimate_interest",
            "legitimate interest",
            "legitimate-interest",
            "li",
            "intérêt légitime",
            "interet legitime",
        ),
        "legitimate_interest",
    ),
}


def normalise_basis(value: str) -> str:
    """A known basis in its canonical spelling; anything else is kept as written."""
    return _BASIS_ALIASES.get(value.strip().lower(), value.strip())


# --- records ------------------------------------------------------------------


class ContactParser:
    """Turns one record (column → raw value) into a `ContactInput`, or says why not.

    Shared by the file import and anything else that upserts contacts from
    outside (the HTTP API), so both accept and refuse the same things.
    """

    def __init__(
        self,
        stages: Sequence[str],
        properties: Mapping[str, str] | None = None,
        *,
        typed: bool = False,
    ) -> None:
        """`typed`: records come from JSON (the API, JSON Lines), where `tags` must be a
        list and `properties` an object; from CSV every value is text (``a;b``)."""
        self._typed = typed
        self._stages = tuple(stages)
        self._stage_by_key = {stage.lower(): stage for stage in stages}
        self._declared: dict[str, tuple[str, str]] = {}
        for name, kind in (properties or {}).items():
            if kind not in _COERCE:
                raise ValueError(f"property {name!r}: unknown type {kind!r}")
            self._declared[column_name(name)] = (name, kind)

    def parse(self, record: Mapping[str, Any], *, strict: bool = False) -> ContactInput:
        """Raises `InvalidContact` with every problem of the record, joined by ``; ``.

        A column that is neither a standard field nor a declared property is kept
        as an undeclared property and listed in `ContactInput.unknown`; `strict`
        refuses the record instead."""
        errors: list[str] = []
        fields: dict[str, Any] = {}
        properties: dict[str, Any] = {}
        tags: tuple[str, ...] = ()
        ignored: list[str] = []
        unknown: list[tuple[str, str | None]] = []
        email: str | None = None
        bad_email = False
        for raw_key, raw_value in record.items():
            problem = value_problem(raw_key, "a column name") or value_problem(
                raw_value, str(raw_key)[:60]
            )
            if problem is not None:
                errors.append(problem)
                continue
            value = _clean(raw_value)
            if value is None:
                continue
            key = column_name(raw_key)
            key = COLUMN_ALIASES.get(key, key)
            if self._typed and key in _TEXT_ONLY and not isinstance(value, str):
                errors.append(f"{key} must be text")
                continue
            if key == "email":
                email = canonical_email(value) if isinstance(value, str) else None
                if email is None:
                    bad_email = True
                    why = email_problem(value) if isinstance(value, str) else "not text"
                    errors.append(f"invalid email {shown(value)} ({why})")
            elif key == "owner":
                owner = canonical_email(value) if isinstance(value, str) else None
                if owner is None:
                    errors.append(f"invalid owner {shown(value)} (expected an email address)")
                else:
                    fields["owner"] = owner
            elif key in TEXT_COLUMNS:
                text = _text(value)
                if len(text) > TEXT_LIMITS[key]:
                    errors.append(f"{key} longer than {TEXT_LIMITS[key]} characters")
                else:
                    fields[key] = text
            elif key == "stage":
                stage = self._stage_by_key.get(_text(value).lower())
                if stage is None:
                    expected = ", ".join(self._stages)
                    errors.append(f"unknown stage {shown(value)} (expected one of: {expected})")
                else:
                    fields["stage"] = stage
            elif key == "timezone":
                zone = canonical_timezone(value) if isinstance(value, str) else None
                if zone is None:
                    errors.append(f"unknown timezone {shown(value)}")
                else:
                    fields["timezone"] = zone
            elif key == "consent":
                if self._typed and not isinstance(value, Mapping | str):
                    errors.append("consent must be an object or a status")
                elif isinstance(value, Mapping):
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
                if self._typed and (
                    not isinstance(value, list) or not all(isinstance(t, str) for t in value)
                ):
                    errors.append("tags must be a list of strings")
                else:
                    tags = tuple(str(tag) for tag in _list(value))
            elif key == "properties" and (self._typed or isinstance(value, Mapping)):
                if not isinstance(value, Mapping):
                    errors.append("properties must be an object")
                    continue
                for name, item in value.items():
                    self._property(str(name), _clean(item), properties, errors)
            elif key in COMPUTED_COLUMNS:
                ignored.append(key)
            elif key:
                if key not in self._declared:
                    unknown.append((key, self.suggestion(key)))
                self._property(key, value, properties, errors)
        if email is None and not bad_email:
            errors.insert(0, "missing email")
        if strict and unknown:
            errors += [unknown_column_message(name, hint, strict=True) for name, hint in unknown]
        if errors:
            raise InvalidContact("; ".join(errors))
        assert email is not None
        return ContactInput(email, fields, properties, tags, tuple(ignored), tuple(unknown))

    def suggestion(self, key: str) -> str | None:
        """The standard field or declared property `key` is closest to, if one is close."""
        names = [*KNOWN_COLUMNS, *self._declared]
        found = difflib.get_close_matches(key, names, n=1, cutoff=0.7)
        return found[0] if found else None

    def _consent_status(self, value: Any, fields: dict[str, Any], errors: list[str]) -> None:
        status = _CONSENT_ALIASES.get(_text(value).strip().lower())
        if status is None:
            expected = ", ".join(CONSENT_STATUSES)
            errors.append(f"unknown consent {shown(value)} (expected one of: {expected})")
        else:
            fields["consent_status"] = status

    def _consent_at(self, value: Any, fields: dict[str, Any], errors: list[str]) -> None:
        try:
            fields["consent_at"] = _datetime(value)
        except ValueError:
            errors.append(
                f"invalid consent_at {shown(value)} (expected an ISO date or date-time, "
                "years 1900 to 9999)"
            )

    def _consent_object(
        self, value: Mapping[str, Any], fields: dict[str, Any], errors: list[str]
    ) -> None:
        for name, item in value.items():
            item = _clean(item)
            if item is None:
                continue
            if self._typed and name in _TEXT_ONLY_CONSENT and not isinstance(item, str):
                errors.append(f"consent.{name} must be text")
            elif name == "status":
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
                errors.append(f"unknown consent field {shown(name)}")

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
            errors.append(f"invalid {name} {shown(value)} (expected {expected})")
