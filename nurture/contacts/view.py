"""The face a contact shows to expressions and templates.

Marketers write `contact.company` or `contact.budget_confirmed` without caring
whether it is a column or a custom property. `ContactView` resolves both, and a
property the project declares but a contact lacks reads as None rather than an
error, so one incomplete CRM row never stops a whole send.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from nurture.definitions.fields import STANDARD_FIELDS


class ContactView:
    """Read-only attribute access over standard fields and custom properties."""

    __slots__ = ("_declared", "_fields", "_properties")

    def __init__(
        self,
        fields: Mapping[str, Any],
        properties: Mapping[str, Any] | None = None,
        declared: Iterable[str] = (),
    ) -> None:
        self._fields = dict(fields)
        self._properties = dict(properties or {})
        self._declared = frozenset(declared)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in self._fields:
            return self._fields[name]
        if name in self._properties:
            return self._properties[name]
        if name in self._declared or name in STANDARD_FIELDS:
            return None
        raise AttributeError(name)

    def __getitem__(self, name: str) -> Any:
        if not isinstance(name, str) or name.startswith("_"):
            raise KeyError(name)  # the sandbox then refuses it as an unsafe attribute
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None

    def get(self, name: str, default: Any = None) -> Any:
        try:
            return getattr(self, name)
        except AttributeError:
            return default

    def __repr__(self) -> str:
        return f"ContactView(id={self._fields.get('id')!r})"


_SAMPLE_BY_TYPE: dict[str, Any] = {
    "number": 42,
    "boolean": True,
    "date": date(2026, 1, 15),
}

#: Text for the properties projects most often declare, so a preview reads like
#: the email a contact gets ("Vous avez consulté « Le guide du lead scoring »"),
#: not « exemple ». Any other text property shows its own name in brackets,
#: which says in the preview what will stand there.
_SAMPLE_TEXT_BY_NAME: dict[str, str] = {
    "industry": "Industrie",
    "sector": "Industrie",
    "country": "FR",
    "city": "Lyon",
    "region": "Auvergne-Rhône-Alpes",
    "language": "fr",
    "job_title": "Directrice marketing",
    "role": "Directrice marketing",
    "department": "Marketing",
    "phone": "+33 4 72 00 00 00",
    "website": "https://www.example.com",
    "source": "webinaire",
    "last_content": "Le guide du lead scoring",
    "plan": "Pro",
}


def _sample_property(name: str, kind: str) -> Any:
    if kind == "string":
        return _SAMPLE_TEXT_BY_NAME.get(name, f"[{name}]")
    if kind == "list":
        return [f"[{name}]"]
    return _SAMPLE_BY_TYPE.get(kind, f"[{name}]")


def sample_contact(
    properties: Mapping[str, str] | None = None,
    stages: tuple[str, ...] = ("subscriber", "lead"),
) -> ContactView:
    """A plausible contact with every field set, for validate and preview."""
    stages = stages or ("lead",)  # a nurture.yaml whose stages did not parse
    stage = stages[1] if len(stages) > 1 else stages[0]
    fields: dict[str, Any] = {
        "id": 1,
        "email": "anne.martin@example.com",
        "first_name": "Anne",
        "last_name": "Martin",
        "company": "Exemple Industrie",
        "stage": stage,
        "stage_index": stages.index(stage),
        "score": 35,
        "temperature": "warm",
        "timezone": "Europe/Paris",
        "owner": "alice@example.com",
        "consent": "legitimate_interest",
        "tags": ["webinar-2026"],
        "created_at": datetime(2026, 1, 5, 9, 0, tzinfo=UTC),
    }
    props = {name: _sample_property(name, kind) for name, kind in (properties or {}).items()}
    return ContactView(fields, props, declared=props)
