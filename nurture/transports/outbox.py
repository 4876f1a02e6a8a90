"""The outbox folder: every email as an `.eml` file, the embedded default.

With no SMTP configured nurture still "sends": each message lands in
``outbox/`` as the exact bytes an SMTP relay would have received, named
``<UTC time>-<send id>.eml`` so a listing reads in sending order. Any mail
client opens them; a script can pick them up and relay them.

A file appears whole or not at all: it is written under a dot-name, flushed
to disk, then renamed into place, so a reader watching the folder never sees
half a message, and a crash leaves at most a stray ``.tmp`` file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import nurture.clock as clock
from nurture.transports.base import TransientDeliveryError, Transport
from nurture.transports.message import OutgoingEmail
from nurture.transports.mime import BuiltMessage

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class OutboxTransport(Transport):
    """Write each message to `directory` (created on first use).

    `fsync` (default on) makes a written file survive a power cut, which is
    what "sent" must mean when another program relays the folder; turn it off
    for a throwaway folder where speed matters more.
    """

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"OutboxTransport({str(self.directory)!r})"

    def path_for(self, send_id: str) -> Path:
        """Where a message for `send_id` sent now goes (the time makes a retry a new file)."""
        stamp = clock.now().strftime("%Y%m%dT%H%M%S.%fZ")
        safe = _UNSAFE.sub("_", send_id).strip("._")[:80] or "send"
        return self.directory / f"{stamp}-{safe}.eml"

    def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            target = self.path_for(email.send_id)
            fd, temporary = tempfile.mkstemp(
                prefix=f".{target.stem}.", suffix=".tmp", dir=self.directory
            )
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.data)
                    if self.fsync:
                        handle.flush()
                        os.fsync(handle.fileno())
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:  # disk full, permissions: may well pass later
            raise TransientDeliveryError(f"cannot write to {self.directory}: {exc}") from exc
