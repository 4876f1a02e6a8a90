"""An SMTP test server that can hold messages at the last moment, for crash tests.

`GatedSMTPServer.hold_after(n)`: once `n` messages were accepted, every
following DATA is held *after* the message was transmitted and *before* the
server answers — the moment a client cannot tell whether the mail went
through. A client killed there never got its 250; like a real relay whose
client vanished before the final reply, the server then discards the message
(aiosmtpd cancels the handler when the connection drops). `release()` lets
every held session carry on.

That is how the fault test kills a worker mid-batch without landing in the
one window no mail system can close: between the relay accepting a message
and the sender recording it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

from tests.smtp_server import SMTPTestServer, _Handler


class _GatedHandler(_Handler):
    _owner: GatedSMTPServer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        owner = self._owner
        if owner._should_hold():
            port = session.peer[1]
            owner._hold(port)
            try:
                while owner._holding:
                    await asyncio.sleep(0.01)
            finally:
                owner._unhold(port)
            if server.transport is None or server.transport.is_closing():
                return "421 4.4.2 The client went away"  # nobody to hear it: not delivered
        result: str = await super().handle_DATA(server, session, envelope)
        return result


class GatedSMTPServer(SMTPTestServer):
    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._hold_after: int | None = None
        self._holding = False
        self._held: set[int] = set()
        self.discarded = 0

    def start(self) -> GatedSMTPServer:
        super().start()
        assert self._controller is not None
        self._controller.handler = _GatedHandler(self)  # every new session from now on
        return self

    def hold_after(self, count: int) -> None:
        with self._lock:
            self._hold_after = count

    def release(self) -> None:
        with self._lock:
            self._hold_after = None
            self._holding = False

    @property
    def held_ports(self) -> set[int]:
        """The client-side ports of the sessions held at DATA right now."""
        with self._lock:
            return set(self._held)

    def wait_for_held(self, timeout: float) -> set[int]:
        deadline = time.monotonic() + timeout
        while not self.held_ports and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.held_ports

    # -- called from the server thread -------------------------------------

    def _should_hold(self) -> bool:
        with self._lock:
            if self._hold_after is not None and len(self._messages) >= self._hold_after:
                self._holding = True
            return self._holding

    def _hold(self, port: int) -> None:
        with self._lock:
            self._held.add(port)

    def _unhold(self, port: int) -> None:
        with self._lock:
            self._held.discard(port)


def socket_owner(local_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the TCP socket bound to 127.0.0.1:`local_port`, if any."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                    inodes.add(fields[9])
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        return pid
    return None
