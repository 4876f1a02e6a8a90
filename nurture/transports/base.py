"""The send pipeline every transport shares, and what it hands back.

`Transport.send` owns the whole path: build the message bytes once (`mime`),
hand them to the subclass's `_deliver` hook, return a `Delivery`. Subclasses
only move bytes (SMTP, a folder, a list in memory), so every transport sends
exactly the same message and a failure always comes back as a
`DeliveryError` that says whether trying again can help.

Retries are deliberately not done here: the engine reschedules a transient
failure in the database (so it survives a restart) using `retry_delay` and
`MAX_ATTEMPTS`. A transport that sleeps and retries would hold a worker
thread hostage and lose the retry on a crash.
"""

from __future__ import annotations

import logging
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from types import TracebackType
from typing import ClassVar, Protocol, Self

import nurture.clock as clock
from nurture.errors import NurtureError
from nurture.transports.message import Delivery, OutgoingEmail
from nurture.transports.mime import BuiltMessage, build_message

logger = logging.getLogger("nurture.transports")

MAX_ATTEMPTS = 8
"""Attempts (the first send included) before a transient failure becomes final.

With `retry_delay` that is 1, 2, 4, 8, 16, 32 and 60 minutes between tries:
about two hours, long enough to ride out greylisting and a short outage of
the relay, short enough that a nurture email is still timely.
"""

FIRST_RETRY_DELAY = timedelta(minutes=1)
MAX_RETRY_DELAY = timedelta(hours=1)
RETRY_JITTER = 0.2


def retry_delay(attempt: int, rng: random.Random | None = None) -> timedelta:
    """How long to wait before the next try, after `attempt` failed tries (1-based).

    Exponential (1 min, 2, 4 …) capped at `MAX_RETRY_DELAY`, then shortened by
    up to `RETRY_JITTER` at random so that a batch refused together by a
    throttling relay does not come back together. Never above the cap, never
    below `(1 - RETRY_JITTER) * FIRST_RETRY_DELAY`.
    """
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    # Bound the shift first: a huge attempt count must not build a huge int.
    nominal = min(FIRST_RETRY_DELAY * (1 << min(attempt - 1, 32)), MAX_RETRY_DELAY)
    jitter = (rng.random() if rng else random.random()) * RETRY_JITTER
    return nominal * (1 - jitter)


def mask_address(address: str) -> str:
    """`jeanne.dupont@example.com` → `j***@example.com`: enough to debug, not personal data.

    Logs and exception messages use this; the full address stays available on
    the `recipient` attribute for whoever needs to record it.
    """
    local, at, domain = address.rpartition("<")[2].rstrip(">").strip().rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


_ADDRESS = re.compile(r"[^\s<>()\[\]\"',;:]+@[A-Za-z0-9.-]+[A-Za-z0-9]")


def mask_addresses(text: str) -> str:
    """Every email address in `text` masked as `mask_address` does."""
    return _ADDRESS.sub(lambda found: mask_address(found.group(0)), text)


class DeliveryError(NurtureError):
    """The email could not be sent."""

    transient: ClassVar[bool] = False
    #: Set when the relay itself could not be reached (nothing was attempted): the
    #: rest of a batch is not tried against it.
    unreachable: bool = False

    def __init__(
        self,
        reason: str | None = None,
        *,
        send_id: str | None = None,
        recipient: str | None = None,
        smtp_code: int | None = None,
        smtp_message: str | None = None,
    ) -> None:
        self.reason = reason or (self.__doc__ or "").strip()
        self.send_id = send_id
        self.recipient = recipient
        self.smtp_code = smtp_code
        self.smtp_message = smtp_message
        super().__init__(self._describe())

    def _describe(self) -> str:
        """The message logs and `sends.error` show: every address in it masked, the
        relay's reply included (``550 5.1.1 <jeanne@…>: unknown user``)."""
        parts = [mask_addresses(self.reason)]
        if self.smtp_code is not None:
            reply = mask_addresses(self.smtp_message or "")
            parts.append(f"(SMTP {self.smtp_code}: {reply})".replace(": )", ")"))
        if self.recipient:
            parts.append(f"to {mask_address(self.recipient)}")
        if self.send_id:
            parts.append(f"[send {self.send_id}]")
        return " ".join(parts)

    def for_email(self, email: OutgoingEmail) -> Self:
        """Fill in which send and recipient this was, when the raiser did not know."""
        if self.send_id is None:
            self.send_id = email.send_id
        if self.recipient is None:
            self.recipient = email.to
        self.args = (self._describe(),)
        return self


class TransientDeliveryError(DeliveryError):
    """The email could not be sent now; trying again later may work (SMTP 4xx, network)."""

    transient = True


class Throttled(TransientDeliveryError):
    """Not handed to the relay: the send rate (`sending.rate`) had no place for it now.

    Not an attempt and not the relay's answer: the engine leaves the email due
    for `retry_after` seconds."""

    def __init__(self, retry_after: float, *, send_id: str | None = None) -> None:
        self.retry_after = retry_after
        super().__init__("waiting for sending.rate", send_id=send_id)


#: Called just before a message is handed to the relay: None to go, or the seconds
#: until the send rate has a place for it (the message is then `Throttled`).
Gate = Callable[[], float | None]


class PermanentDeliveryError(DeliveryError):
    """The email was refused for good (SMTP 5xx, invalid address); do not retry."""

    transient = False


class MessageSigner(Protocol):
    """Adds a signature to built message bytes (DKIM: `transports.dkim.DkimSigner`)."""

    def sign(self, message: BuiltMessage) -> BuiltMessage: ...


class Transport(ABC):
    """Build the message, sign it, hand its bytes to `_deliver`, report a `Delivery`.

    Subclasses implement `_deliver` (and `close` when they hold a resource);
    `_batch` lets one keep a resource (a connection, a lock) across
    `send_many`. `signer` (set by `transport_from_settings` when DKIM is
    configured) signs every message, whatever the transport.
    """

    signer: MessageSigner | None = None

    def send(
        self,
        email: OutgoingEmail,
        before_deliver: Callable[[], None] | None = None,
        gate: Gate | None = None,
    ) -> Delivery:
        """Send one email; raise `DeliveryError` when it was not accepted.

        `before_deliver` runs once the message is built and signed, just before
        it leaves: the engine waits there for the previous outcome's commit.
        `gate` runs last, at the moment of hand-off, so that the send rate is
        measured where the relay measures it.
        """
        now = clock.now()
        try:
            message = build_message(email, now=now)
        except ValueError as exc:
            error = PermanentDeliveryError(
                f"invalid message: {exc}", send_id=email.send_id, recipient=email.to
            )
            logger.info("%s", error)
            raise error from exc
        if self.signer is not None:
            try:
                message = self.signer.sign(message)
            except Exception as exc:  # dkimpy raises its own and ValueError-likes
                error = PermanentDeliveryError(
                    f"could not sign the message: {type(exc).__name__}: {exc}",
                    send_id=email.send_id,
                    recipient=email.to,
                )
                logger.warning("%s", error)
                raise error from exc
        if before_deliver is not None:
            before_deliver()
        if gate is not None:
            try:
                self._ready()
            except DeliveryError as exc:
                exc.for_email(email)
                logger.info("%s", exc)
                raise
            if (wait := gate()) is not None:
                raise Throttled(wait, send_id=email.send_id)
        try:
            self._deliver(message, email)
        except DeliveryError as exc:
            exc.for_email(email)
            logger.info("%s", exc)
            raise
        logger.debug("send %s accepted as %s", email.send_id, message.message_id)
        return Delivery(email.send_id, message.message_id, now)

    def _ready(self) -> None:
        """Be ready to hand a message over at once (a relay's session opened) before the
        rate gate takes its place: opening a session costs round trips, and a place taken
        before them would reach the relay that much later, bunched with the next ones.
        Nothing to do for a transport without sessions."""
        return None

    def send_many(
        self,
        emails: Iterable[OutgoingEmail],
        on_result: Callable[[int, Delivery | DeliveryError], None] | None = None,
        before_deliver: Callable[[], None] | None = None,
        gate: Gate | None = None,
    ) -> list[Delivery | DeliveryError]:
        """One result per email, in order; a refused email never stops the batch.

        `on_result(index, result)` runs as soon as each email's fate is known,
        before the next is sent: the engine records it then, so a crash
        mid-batch cannot make it send again what the server already accepted.
        `emails` may be a generator: the engine composes each email while the
        previous outcome commits (see `send`'s `before_deliver`).
        """
        results: list[Delivery | DeliveryError] = []
        with self._batch():
            for index, email in enumerate(emails):
                result: Delivery | DeliveryError
                try:
                    result = self.send(email, before_deliver, gate)
                except DeliveryError as exc:
                    result = exc
                results.append(result)
                if on_result is not None:
                    on_result(index, result)
        return results

    def with_connections(self, count: int) -> Transport:
        """This transport sending over `count` connections at once (`sending.connections`);
        only a remote relay has any to open: the others are returned as they are."""
        return self

    def close(self) -> None:  # noqa: B027 - a hook: most transports hold nothing
        """Release what the transport holds (an SMTP connection); it may be used again."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """Around `send_many`; SMTP holds its connection for the whole batch."""
        yield

    @abstractmethod
    def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
        """Hand `message.data` on; raise `DeliveryError` if it was not accepted.

        `message` carries the SMTP envelope and the Message-ID; `email` is
        there for transports that keep more than bytes (capture).
        """
