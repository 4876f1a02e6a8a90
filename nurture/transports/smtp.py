"""SMTP: one reused connection, STARTTLS or implicit TLS, every failure classified.

`SMTPTransport.from_url("smtp://user:pass@host:587")` is what
``NURTURE_SMTP_URL`` configures. The transport keeps one connection open
across sends (and holds it for a whole `send_many`), reconnecting once,
transparently, when the server has dropped it while idle.

What a failure means is decided here, once, for the engine:

- SMTP 4xx, a refused or dropped connection, a timeout →
  `TransientDeliveryError`: the engine retries later (`retry_delay`);
- SMTP 5xx for the sender, the recipient or the content →
  `PermanentDeliveryError` carrying the code and the server's text;
- wrong credentials, a server without the TLS or AUTH we were told to use, a
  TLS certificate we cannot trust (``NURTURE_SMTP_CA_FILE`` trusts a private CA) →
  `ConfigurationError`, outside `NurtureError` on purpose: marking every
  contact's email failed because a password is wrong would be a disaster,
  and retrying would only hammer the relay.

Nothing is retried in here: a sleeping retry would hold a worker thread and
vanish on a crash, while the engine's retries live in the database.
Credentials go over TLS only, unless the server is on this machine or TLS
was turned off explicitly (``?starttls=off``); passwords never appear in a
repr, a log line or an exception.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
import re
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import cache
from typing import Literal, NoReturn
from urllib.parse import parse_qsl, unquote, urlsplit

from nurture.errors import ConfigurationError
from nurture.transports.base import (
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
)
from nurture.transports.message import OutgoingEmail
from nurture.transports.mime import BuiltMessage

logger = logging.getLogger("nurture.transports.smtp")

StartTLS = Literal["auto", "require", "off"]

DEFAULT_TIMEOUT = 30.0
"""Seconds for each network operation (connect, each command, the DATA upload)."""

MAX_IDLE = 60.0
"""Seconds after which an idle connection is replaced rather than trusted.

Servers close idle sessions after a few minutes (RFC 5321 suggests 5) and a
NAT may drop them silently, which would cost a full timeout to discover.
"""

_PORTS = {"smtp": 25, "smtps": 465}
_QUERY_KEYS = {"starttls", "verify", "timeout", "helo"}


class _Stale(Exception):
    """The connection was dead before the server took anything from us: safe to redo."""

    def __init__(self, reason: str, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class SMTPTransport(Transport):
    """Send through an SMTP relay; see the module docstring for what failures mean.

    One connection per transport, used by one send at a time (a lock makes
    the transport safe to share between threads, but serialises them: give
    each worker thread its own transport to send in parallel).
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        username: str | None = None,
        password: str | None = None,
        implicit_tls: bool = False,
        starttls: StartTLS = "auto",
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if starttls not in ("auto", "require", "off"):
            raise ConfigurationError(
                f"SMTP starttls must be auto, require or off, not {starttls!r}"
            )
        if (username is None) != (password is None):
            raise ConfigurationError("SMTP credentials need both a user name and a password")
        self.host = host
        self.port = port or _PORTS["smtps" if implicit_tls else "smtp"]
        self.username = username
        self._password = password
        self.implicit_tls = implicit_tls
        self.starttls = starttls
        self.timeout = timeout
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname
        self.connections_opened = 0
        self._connection: smtplib.SMTP | None = None
        self._last_used = 0.0
        self._lock = threading.RLock()
        self._batch_failure: DeliveryError | None = None
        self._in_batch = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        ssl_context: ssl.SSLContext | None = None,
    ) -> SMTPTransport:
        """``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://`` (implicit TLS).

        Credentials are percent-decoded (``p%40ss`` is ``p@ss``). Query options:
        ``starttls=auto|require|off`` (smtp:// only), ``timeout=<seconds>``,
        ``helo=<name>`` (the name we greet with, default this machine's FQDN),
        and ``verify=false``, **for tests only**, which accepts any
        certificate (prefer passing `ssl_context` trusting the test CA).
        Default ports: 25 for smtp://, 465 for smtps://.
        """
        parts = urlsplit(url)
        shown = redact_url(url)
        if parts.scheme not in _PORTS or not parts.hostname:
            raise ConfigurationError(f"{shown}: expected smtp://user:pass@host:port or smtps://…")
        try:
            port = parts.port
        except ValueError:
            raise ConfigurationError(f"{shown}: the port is not a number") from None
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(query) - _QUERY_KEYS)
        if unknown:
            raise ConfigurationError(f"{shown}: unknown option(s) {', '.join(unknown)}")
        starttls = query.get("starttls", "auto")
        if starttls not in ("auto", "require", "off"):
            raise ConfigurationError(f"{shown}: starttls must be auto, require or off")
        if parts.scheme == "smtps" and "starttls" in query:
            raise ConfigurationError(f"{shown}: smtps:// is TLS from the start; drop starttls")
        if "timeout" in query:
            try:
                timeout = float(query["timeout"])
            except ValueError:
                raise ConfigurationError(f"{shown}: timeout must be a number of seconds") from None
        verify = query.get("verify", "true").lower()
        if verify not in ("true", "false"):
            raise ConfigurationError(f"{shown}: verify must be true or false")
        if verify == "false" and ssl_context is None:
            ssl_context = ssl.create_default_context()
            ssl_context.check_hostname = False
            ssl_context.verify_mode = ssl.CERT_NONE
        username = unquote(parts.username) if parts.username is not None else None
        password = unquote(parts.password) if parts.password is not None else None
        if username is not None and password is None:
            raise ConfigurationError(f"{shown}: a user name without a password")
        return cls(
            parts.hostname,
            port,
            username=username,
            password=password,
            implicit_tls=parts.scheme == "smtps",
            starttls=starttls,  # type: ignore[arg-type]  # checked above
            timeout=timeout,
            ssl_context=ssl_context,
            local_hostname=query.get("helo") or None,
        )

    @property
    def url(self) -> str:
        """The relay as a URL, password hidden: safe to log."""
        scheme = "smtps" if self.implicit_tls else "smtp"
        user = f"{self.username}:***@" if self.username is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{user}{host}:{self.port}"

    def __repr__(self) -> str:
        return f"SMTPTransport({self.url})"

    def with_connections(self, count: int) -> Transport:
        """A `TransportPool` of `count` copies of this transport (one connection each)."""
        if count <= 1:
            return self
        from nurture.transports.pool import TransportPool

        return TransportPool(self.copy, count)

    def copy(self) -> SMTPTransport:
        """The same relay and settings, with a connection of its own."""
        twin = SMTPTransport(
            self.host,
            self.port,
            username=self.username,
            password=self._password,
            implicit_tls=self.implicit_tls,
            starttls=self.starttls,
            timeout=self.timeout,
            ssl_context=self._context(),
            local_hostname=self.local_hostname,
        )
        twin.signer = self.signer
        return twin

    def close(self) -> None:
        """Say QUIT and drop the connection; the next send opens a new one."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                try:
                    connection.quit()
                except (smtplib.SMTPException, OSError):
                    pass
                finally:
                    connection.close()

    @contextmanager
    def _batch(self) -> Iterator[None]:
        with self._lock:
            self._in_batch, self._batch_failure = True, None
            try:
                yield
            finally:
                self._in_batch, self._batch_failure = False, None

    def _ready(self) -> None:
        with self._lock:
            if self._batch_failure is not None:
                return  # `_deliver` says so
            if self._connection is not None and time.monotonic() - self._last_used > MAX_IDLE:
                self._discard()
            if self._connection is None:
                self._open()
                self._last_used = time.monotonic()

    def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
        with self._lock:
            if self._batch_failure is not None:
                # Do not spend another timeout per message on a relay that is down.
                raise TransientDeliveryError(f"not attempted: {self._batch_failure.reason}")
            connection = self._connection
            if connection is not None and time.monotonic() - self._last_used > MAX_IDLE:
                self._discard()
                connection = None
            try:
                if connection is None:
                    self._transaction(self._open(), message)
                else:
                    try:
                        self._transaction(connection, message)
                    except _Stale:
                        logger.debug("%s: idle connection was dropped; reconnecting", self.url)
                        self._discard()
                        self._transaction(self._open(), message)
            except _Stale as exc:
                self._discard()
                raise TransientDeliveryError(
                    "the server closed the session"
                    if exc.code
                    else f"the connection was lost: {exc}",
                    smtp_code=exc.code,
                    smtp_message=exc.reason if exc.code else None,
                ) from exc
            finally:
                self._last_used = time.monotonic()

    def _transaction(self, connection: smtplib.SMTP, message: BuiltMessage) -> None:
        """MAIL, RCPT, DATA, each reply classified; the connection stays usable after a refusal."""
        if connection.has_extn("pipelining"):
            self._pipelined(connection, message)
            return
        try:
            code, reply = connection.mail(message.envelope_from)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Stale(str(exc)) from exc
        if code == 421:  # the server is closing this session: a new one may do
            raise _Stale(_text(reply), code)
        if code == 530:  # every message would be refused the same way: not the message's fault
            self._discard()
            raise ConfigurationError(
                f"{self.url}: the server requires authentication ({code} {_text(reply)}); "
                "put the user name and password in the URL"
            )
        try:
            if code != 250:
                self._refused(connection, code, reply, "the sender was refused")
            for recipient in message.recipients:
                code, reply = connection.rcpt(recipient)
                if code not in (250, 251):
                    self._refused(connection, code, reply, "the recipient was refused")
            code, reply = connection.data(message.data)
            if code != 250:
                self._refused(connection, code, reply, "the message was refused")
        except smtplib.SMTPResponseException as exc:  # DATA not answered with 354
            self._refused(connection, exc.smtp_code, exc.smtp_error, "the message was refused")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Past MAIL FROM the server may already hold the message: not redone here.
            self._discard()
            raise TransientDeliveryError(f"the connection was lost: {exc}") from exc

    def _pipelined(self, connection: smtplib.SMTP, message: BuiltMessage) -> None:
        """`_transaction` in two round trips instead of three (RFC 2920): MAIL, RCPT and
        DATA go in one write, their replies are read in order, then the message."""
        try:
            connection.putcmd("mail", f"FROM:{smtplib.quoteaddr(message.envelope_from)}")
            for recipient in message.recipients:
                connection.putcmd("rcpt", f"TO:{smtplib.quoteaddr(recipient)}")
            connection.putcmd("data")
            code, reply = connection.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _Stale(str(exc)) from exc  # nothing was taken: safe to redo
        if code in (421, 530):
            self._discard()  # the other replies are still on the wire
            if code == 421:
                raise _Stale(_text(reply), code)
            raise ConfigurationError(
                f"{self.url}: the server requires authentication ({code} {_text(reply)}); "
                "put the user name and password in the URL"
            )
        try:
            failure = None if code == 250 else (code, reply, "the sender was refused")
            for _ in message.recipients:
                rcpt_code, rcpt_reply = connection.getreply()
                if failure is None and rcpt_code not in (250, 251):
                    failure = (rcpt_code, rcpt_reply, "the recipient was refused")
            data_code, data_reply = connection.getreply()
            if data_code == 354 and failure is not None:
                # The server would take a message for whoever it accepted: end the
                # session rather than send anything (RFC 2920 leaves no clean way back).
                self._discard()
                raise _refusal(*failure)
            if data_code != 354:
                self._refused(
                    connection, *(failure or (data_code, data_reply, "the message was refused"))
                )
            connection.send(_dot_stuffed(message.data))
            code, reply = connection.getreply()
            if code != 250:
                self._refused(connection, code, reply, "the message was refused")
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._discard()
            raise TransientDeliveryError(f"the connection was lost: {exc}") from exc

    def _refused(
        self, connection: smtplib.SMTP, code: int, reply: bytes | str, what: str
    ) -> NoReturn:
        if code == 421:
            self._discard()
        else:
            try:
                connection.rset()
            except (smtplib.SMTPException, OSError):
                self._discard()
        raise _refusal(code, reply, what)

    def _open(self) -> smtplib.SMTP:
        """Connect, greet, secure, authenticate; a failure here is never the message's fault."""
        try:
            connection = self._connect()
        except DeliveryError as exc:
            exc.unreachable = True
            if self._in_batch:
                self._batch_failure = exc
            raise
        self._connection = connection
        self.connections_opened += 1
        logger.debug("%s: connected", self.url)
        return connection

    def _connect(self) -> smtplib.SMTP:
        hostname = self.local_hostname or _local_hostname()
        connection: smtplib.SMTP | None = None
        try:
            if self.implicit_tls:
                connection = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=hostname,
                    timeout=self.timeout,
                    context=self._context(),
                )
            else:
                connection = smtplib.SMTP(
                    self.host, self.port, local_hostname=hostname, timeout=self.timeout
                )
            connection.ehlo_or_helo_if_needed()
            encrypted = self.implicit_tls
            if not encrypted and self.starttls != "off":
                if connection.has_extn("starttls"):
                    connection.starttls(context=self._context())
                    connection.ehlo()
                    encrypted = True
                elif self.starttls == "require":
                    raise ConfigurationError(
                        f"{self.url}: the server does not offer STARTTLS (starttls=require)"
                    )
            if self.username is not None and self._password is not None:
                if not encrypted and self.starttls != "off" and not _is_loopback(self.host):
                    raise ConfigurationError(
                        f"{self.url}: the server offers no TLS; refusing to send the password "
                        "in clear (use smtps://, or ?starttls=off if you really mean it)"
                    )
                self._login(connection, self.username, self._password)
        except ConfigurationError:
            _drop(connection)
            raise
        except smtplib.SMTPResponseException as exc:
            _drop(connection)
            raise TransientDeliveryError(
                f"cannot open a session with {self.url}",
                smtp_code=exc.smtp_code,
                smtp_message=_text(exc.smtp_error),
            ) from exc
        except ssl.SSLCertVerificationError as exc:
            # Not the relay having a bad day: every email would fail the same way.
            _drop(connection)
            raise ConfigurationError(
                f"{self.url}: the relay's TLS certificate is not trusted "
                f"({exc.verify_message or exc.reason}); if a private CA signed it (or it is "
                "self-signed), set NURTURE_SMTP_CA_FILE to that CA's PEM file"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:  # refused, timeout, TLS, dropped
            _drop(connection)
            raise TransientDeliveryError(f"cannot connect to {self.url}: {exc}") from exc
        return connection

    def _login(self, connection: smtplib.SMTP, username: str, password: str) -> None:
        try:
            if (username + password).isascii():
                connection.login(username, password)
            else:
                _login_plain_utf8(connection, username, password)
        except smtplib.SMTPAuthenticationError as exc:
            if 400 <= exc.smtp_code < 500:
                raise
            raise ConfigurationError(
                f"{self.url}: authentication failed ({exc.smtp_code} {_text(exc.smtp_error)})"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise ConfigurationError(f"{self.url}: the server does not offer AUTH") from None
        except smtplib.SMTPException as exc:
            if isinstance(exc, smtplib.SMTPResponseException | smtplib.SMTPServerDisconnected):
                raise
            raise ConfigurationError(f"{self.url}: cannot authenticate: {exc}") from None

    def _context(self) -> ssl.SSLContext:
        if self.ssl_context is None:
            self.ssl_context = ssl.create_default_context()
        return self.ssl_context

    def _discard(self) -> None:
        """Forget the connection without the QUIT courtesy: it is broken or suspect."""
        connection, self._connection = self._connection, None
        _drop(connection)


def redact_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return parts._replace(netloc=f"{user}:***@{netloc[2]}").geturl()


def _login_plain_utf8(connection: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH PLAIN in UTF-8 (RFC 4616): smtplib only sends ASCII credentials."""
    if "plain" not in connection.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPException("non-ASCII credentials need AUTH PLAIN, which is not offered")
    token = base64.b64encode(f"\0{username}\0{password}".encode()).decode("ascii")
    code, reply = connection.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, reply)


def _drop(connection: smtplib.SMTP | None) -> None:
    if connection is not None:
        with suppress(OSError):
            connection.close()


def _refusal(code: int, reply: bytes | str, what: str) -> DeliveryError:
    error_class = PermanentDeliveryError if 500 <= code < 600 else TransientDeliveryError
    return error_class(what, smtp_code=code, smtp_message=_text(reply))


def _dot_stuffed(data: bytes) -> bytes:
    """The message as DATA sends it: lines starting with a dot doubled, CRLF.CRLF after."""
    body = re.sub(rb"(?m)^\.", b"..", data)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body + b".\r\n"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cache
def _local_hostname() -> str:
    """What smtplib would compute on every connect (a DNS lookup): once per process."""
    return socket.getfqdn()
