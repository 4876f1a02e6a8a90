"""The names a definition may use for a contact: its standard fields, its property types.

Part of the definition language (`validate` rejects `contact.x` for any other
name), so it lives with the definitions; `nurture.contacts.view` serves them.
"""

from __future__ import annotations

#: Fields every contact has. Custom properties are declared in nurture.yaml.
STANDARD_FIELDS: tuple[str, ...] = (
    "id",
    "email",
    "first_name",
    "last_name",
    "company",
    "stage",
    "stage_index",
    "score",
    "temperature",
    "timezone",
    "owner",
    "consent",
    "tags",
    "created_at",
)

#: Types a custom property may be declared with (nurture.yaml `properties:`).
PROPERTY_TYPES: tuple[str, ...] = ("string", "number", "boolean", "date", "list")
