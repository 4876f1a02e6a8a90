"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, in a thread, with a free port.

Load it as a pytest plugin (``pytest_plugins = ["tests.smtp_server"]``) for
two fixtures:

- `smtp_server`: a plain server (no TLS, no AUTH), started for the test;
- `make_smtp_server(**options)`: servers with AUTH, STARTTLS or implicit TLS
  (``username=``, ``password=``, ``starttls=True``, ``implicit_tls=True``),
  all stopped after the test.

`SMTPTestServer` records every accepted message (envelope and raw bytes),
counts connections, can refuse on demand like a real relay
(``respond_next(451)``, ``respond_next(451, at="rcpt")``,
``respond_to("x@example.com", 550)``), drop its
live connections or restart on the same port. `silent_server()` is a socket
that accepts connections and never says a word: for timeouts.

TLS certificates come from `trustme`, made at run time for ``127.0.0.1`` and
``localhost``; `client_ssl_context()` trusts them, so tests verify the
certificate as production does instead of turning verification off.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from functools import cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    """One message the server accepted: the SMTP envelope and the bytes of DATA."""

    envelope_from: str
    recipients: tuple[str, ...]
    data: bytes
    tls: bool
    login: str | None

    def parsed(self) -> EmailMessage:
        return BytesParser(policy=policy.default).parsebytes(self.data)  # type: ignore[return-value]


@cache
def _certificate_authority() -> Any:
    import trustme

    return trustme.CA()


@cache
def server_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _certificate_authority().issue_cert(HOST, "localhost").configure_cert(context)
    return context


def ca_pem(folder: Path) -> Path:
    """The test CA's certificate as a PEM file (what NURTURE_SMTP_CA_FILE names)."""
    path = folder / "relay-ca.pem"
    _certificate_authority().cert_pem.write_to_path(str(path))
    return path


def client_ssl_context() -> ssl.SSLContext:
    """A client context that trusts the test CA (and verifies hostnames as usual)."""
    context = ssl.create_default_context()
    _certificate_authority().configure_trust(context)
    return context


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


class _Controller(Controller):  # type: ignore[misc]
    def __init__(self, owner: SMTPTestServer, **kwargs: Any) -> None:
        super().__init__(_Handler(owner), **kwargs)
        self._owner = owner

    def factory(self) -> SMTP:
        session = super().factory()
        self._owner._opened(session)
        return session


class _Handler:
    def __init__(self, owner: SMTPTestServer) -> None:
        self._owner = owner

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self._owner.pipelining:  # aiosmtpd reads commands in order: pipelining just works
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        # AUTH is required here rather than with aiosmtpd's auth_required, which
        # warns on every connection when TLS is not also required.
        if self._owner.username is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        reply = self._owner._next_reply("mail")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self._owner._reply_for(address) or self._owner._next_reply("rcpt")
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        reply = self._owner._next_reply("data")
        if reply:
            return reply
        login = session.auth_data.login.decode() if session.authenticated else None
        self._owner._received(
            ReceivedMessage(
                envelope.mail_from or "",
                tuple(envelope.rcpt_tos),
                envelope.original_content or b"",
                server.transport.get_extra_info("ssl_object") is not None,
                login,
            )
        )
        return "250 2.0.0 Message accepted for delivery"


class SMTPTestServer:
    """aiosmtpd on 127.0.0.1 in a thread; see the module docstring."""

    def __init__(
        self,
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        port: int | None = None,
        pipelining: bool = False,
    ) -> None:
        self.host = HOST
        self.pipelining = pipelining
        self.port = port or free_port()
        self.username = username
        self.password = password
        self.starttls = starttls
        self.implicit_tls = implicit_tls
        self.connections = 0
        self._lock = threading.Lock()
        self._messages: list[ReceivedMessage] = []
        self._sessions: list[SMTP] = []
        self._next: dict[str, list[str]] = {"mail": [], "rcpt": [], "data": []}
        self._by_recipient: dict[str, str] = {}
        self._controller: _Controller | None = None

    # -- life cycle --------------------------------------------------------

    def start(self) -> SMTPTestServer:
        options: dict[str, Any] = {"hostname": self.host, "port": self.port, "ready_timeout": 5.0}
        if self.implicit_tls:
            options["ssl_context"] = server_ssl_context()
        if self.starttls:
            options["tls_context"] = server_ssl_context()
        if self.username is not None:
            options.update(authenticator=self._authenticate, auth_require_tls=False)
        controller = _Controller(self, **options)
        controller.start()
        with self._lock:
            self.connections = 0  # the controller's own readiness probe
        self._controller = controller
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        with self._lock:
            self._sessions.clear()

    def restart(self) -> None:
        """Stop (closing every connection) and start again on the same port."""
        self.stop()
        self.start()

    def drop_connections(self) -> None:
        """Close every live connection from the server side, as an idle timeout would."""
        controller = self._controller
        assert controller is not None, "the server is not running"

        async def close_all() -> None:
            with self._lock:
                sessions = list(self._sessions)
            for session in sessions:
                if session.transport is not None:
                    session.transport.close()
            await asyncio.sleep(0.05)

        asyncio.run_coroutine_threadsafe(close_all(), controller.loop).result(timeout=5)

    def __enter__(self) -> SMTPTestServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what tests look at ------------------------------------------------

    @property
    def url(self) -> str:
        """The URL nurture is configured with (credentials included, percent-encoded)."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = ""
        if self.username is not None:
            user = f"{quote(self.username, safe='')}:{quote(self.password or '', safe='')}@"
        return f"{scheme}://{user}{self.host}:{self.port}"

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._lock:
            return list(self._messages)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[ReceivedMessage]:
        """The messages, once at least `count` have arrived (DATA is acknowledged last)."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.messages

    def respond_next(
        self,
        code: int,
        message: str | None = None,
        *,
        count: int = 1,
        at: Literal["mail", "rcpt", "data"] = "data",
    ) -> None:
        """Answer the next `count` MAIL, RCPT or DATA (the default) commands with `code`.

        ``respond_next(451, at="rcpt")`` is greylisting; ``respond_next(554)``
        a content filter refusing the message after reading it.
        """
        with self._lock:
            self._next[at].extend([_reply(code, message)] * count)

    def respond_to(self, recipient: str, code: int, message: str | None = None) -> None:
        """Answer RCPT TO for `recipient` with `code`, until `clear()`."""
        with self._lock:
            self._by_recipient[recipient.lower()] = _reply(code, message)

    def clear(self) -> None:
        with self._lock:
            self._messages.clear()
            for replies in self._next.values():
                replies.clear()
            self._by_recipient.clear()
            self.connections = 0

    # -- called from the server thread -------------------------------------

    def _opened(self, session: SMTP) -> None:
        with self._lock:
            self.connections += 1
            self._sessions.append(session)

    def _received(self, message: ReceivedMessage) -> None:
        with self._lock:
            self._messages.append(message)

    def _next_reply(self, stage: str) -> str | None:
        with self._lock:
            replies = self._next[stage]
            return replies.pop(0) if replies else None

    def _reply_for(self, recipient: str) -> str | None:
        with self._lock:
            return self._by_recipient.get(recipient.lower())

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and data.login == (self.username or "").encode()
            and data.password == (self.password or "").encode()
        )
        return AuthResult(success=good, handled=False, auth_data=data if good else None)


def _reply(code: int, message: str | None) -> str:
    defaults = {
        421: "4.7.0 Try again later, closing connection",
        451: "4.3.0 Temporary local problem, try again later",
        452: "4.2.2 Mailbox full",
        550: "5.1.1 Mailbox unavailable",
        552: "5.3.4 Message too big",
        554: "5.7.1 Message rejected as spam",
    }
    return f"{code} {message or defaults.get(code, 'Refused')}"


@contextlib.contextmanager
def silent_server() -> Iterator[tuple[str, int]]:
    """A listening socket that completes TCP handshakes and never answers: for timeouts."""
    with socket.create_server((HOST, 0), backlog=8) as listener:
        yield HOST, listener.getsockname()[1]


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    """A plain SMTP server on 127.0.0.1 (no TLS, no AUTH); see `SMTPTestServer`."""
    with SMTPTestServer() as server:
        yield server


@pytest.fixture
def make_smtp_server() -> Iterator[Callable[..., SMTPTestServer]]:
    """Start servers with options (``username=``, ``starttls=True``, ``implicit_tls=True``)."""
    servers: list[SMTPTestServer] = []

    def make(**options: Any) -> SMTPTestServer:
        server = SMTPTestServer(**options).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()
