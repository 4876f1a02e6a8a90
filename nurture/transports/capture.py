"""The in-memory twin of every transport: tests, `simulate`, previews.

`CaptureTransport` runs the same pipeline as SMTP (the message bytes are
built exactly as they would be sent) and keeps each accepted message in a
list instead of handing it to a network. It can also refuse on demand, the
way a relay would, so engine tests can drive the 4xx-retry and 5xx-failure
paths without a server:

    capture.fail_next(2)                       # two 451s, then accept
    capture.fail_next(1, transient=False)      # one 550
    capture.fail_if(lambda email: "bounce" in email.to, transient=False)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

from nurture.transports.base import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from nurture.transports.message import OutgoingEmail
from nurture.transports.mime import BuiltMessage, parse_address

TRANSIENT_REPLY = (451, "4.3.0 Simulated temporary failure")
PERMANENT_REPLY = (550, "5.1.1 Simulated permanent failure: mailbox unavailable")


@dataclass(frozen=True)
class CapturedEmail:
    """One accepted message: what the engine asked for and the bytes that went out."""

    email: OutgoingEmail
    message_id: str
    data: bytes
    envelope_from: str
    recipients: tuple[str, ...]

    @property
    def send_id(self) -> str:
        return self.email.send_id

    @property
    def subject(self) -> str:
        return self.email.subject

    def parsed(self) -> EmailMessage:
        """The bytes read back by the standard library, to assert on what a client sees."""
        return BytesParser(policy=policy.default).parsebytes(self.data)


@dataclass(frozen=True)
class _Rule:
    predicate: Callable[[OutgoingEmail], bool]
    transient: bool
    code: int
    message: str


class CaptureTransport(Transport):
    """Keep every message in memory; thread-safe; fail on demand."""

    def __init__(self) -> None:
        self._lock = threading.RLock()  # a predicate may look at the transport
        self._messages: list[CapturedEmail] = []
        self._fail_count = 0
        self._fail_reply: tuple[bool, int, str] = (True, *TRANSIENT_REPLY)
        self._rules: list[_Rule] = []
        self.attempts = 0

    def __repr__(self) -> str:
        return f"CaptureTransport({len(self._messages)} messages)"

    @property
    def messages(self) -> list[CapturedEmail]:
        """The accepted messages in sending order (a copy: safe to iterate while sending)."""
        with self._lock:
            return list(self._messages)

    def for_recipient(self, address: str) -> list[CapturedEmail]:
        """Messages sent to `address` (the bare address compared case-insensitively)."""
        wanted = parse_address(address)[1].lower()
        return [m for m in self.messages if any(r.lower() == wanted for r in m.recipients)]

    def clear(self) -> None:
        """Forget the captured messages and any pending failures."""
        with self._lock:
            self._messages.clear()
            self._fail_count = 0
            self._rules.clear()
            self.attempts = 0

    def fail_next(
        self,
        count: int = 1,
        *,
        transient: bool = True,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Refuse the next `count` sends: 451 when `transient`, else 550 (or `code`)."""
        default = TRANSIENT_REPLY if transient else PERMANENT_REPLY
        with self._lock:
            self._fail_count = count
            self._fail_reply = (transient, code or default[0], message or default[1])

    def fail_if(
        self,
        predicate: Callable[[OutgoingEmail], bool],
        *,
        transient: bool = True,
        code: int | None = None,
        message: str | None = None,
    ) -> None:
        """Refuse every send for which `predicate(email)` is true, until `clear()`."""
        default = TRANSIENT_REPLY if transient else PERMANENT_REPLY
        with self._lock:
            self._rules.append(
                _Rule(predicate, transient, code or default[0], message or default[1])
            )

    def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
        with self._lock:
            self.attempts += 1
            refusal = self._refusal(email)
            if refusal is None:
                captured = CapturedEmail(
                    email,
                    message.message_id,
                    message.data,
                    message.envelope_from,
                    message.recipients,
                )
                self._messages.append(captured)
        if refusal is not None:
            raise refusal

    def _refusal(self, email: OutgoingEmail) -> DeliveryError | None:
        if self._fail_count > 0:
            self._fail_count -= 1
            transient, code, text = self._fail_reply
        else:
            rule = next((r for r in self._rules if r.predicate(email)), None)
            if rule is None:
                return None
            transient, code, text = rule.transient, rule.code, rule.message
        error_class = TransientDeliveryError if transient else PermanentDeliveryError
        return error_class("simulated refusal", smtp_code=code, smtp_message=text)
