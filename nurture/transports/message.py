"""The values that cross the transport boundary: the email to send, the relay's receipt.

A module of their own so that the MIME builder and the transports can both
import them without importing each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType


@dataclass(frozen=True)
class OutgoingEmail:
    """One rendered email for one contact, as the engine asks a transport to send it.

    `from_address`, `to` and `reply_to` take an address with an optional display
    name (``Équipe Exemple <bonjour@example.com>``; quote a name holding
    ``, ; : < > @ " ( )`` as RFC 5322 says). `headers` are added verbatim after
    the ones nurture sets (e.g. ``List-Unsubscribe``); a non-ASCII value is sent
    as RFC 2047 encoded words, which suits unstructured headers only.
    `message_id` is generated (unique, at the From domain) when not given.
    `return_path` is the envelope sender (SMTP MAIL FROM, where bounces go),
    a bare address; the From address when not given.
    """

    send_id: str
    from_address: str
    to: str
    subject: str
    html: str
    text: str
    reply_to: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    message_id: str | None = None
    return_path: str | None = None


@dataclass(frozen=True)
class Delivery:
    """The relay (or folder, or list) accepted the message: it is out of our hands."""

    send_id: str
    message_id: str
    accepted_at: datetime
