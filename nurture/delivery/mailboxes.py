"""The mailboxes bounces and complaints are read from: a Maildir folder, an IMAP folder.

Both show the same three operations to `nurture.lifecycle.bounce_reports`:
the messages nobody has dealt with yet (`unseen`), and for each either
`done` (it was recorded, or had been before) or `keep` (it could not be
matched: left for a person). The policy, the same for both:

- only *unseen* messages are read: a Maildir's ``new/`` and those in ``cur/``
  without the seen flag (``S``) or the trashed one (``T``); IMAP's ``UNSEEN``;
- a message dealt with is marked seen (moved to ``cur/`` with ``S``; IMAP
  ``\\Seen``) or, with ``delete=True``, deleted (IMAP ``\\Deleted`` then
  EXPUNGE on close);
- a message kept is flagged (``F``; IMAP ``\\Flagged``) and stays unseen,
  so the next run lists it again until someone deletes it or marks it read.

Messages are read one at a time (IMAP with ``BODY.PEEK[]``, which sets no
flag): a large mailbox never sits in memory whole.
"""

from __future__ import annotations

import contextlib
import imaplib
import os
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from nurture.errors import ConfigurationError, NurtureError


@dataclass(frozen=True)
class MailboxMessage:
    """One message and how the mailbox names it (``new/1700000000.M1P2.host``, ``uid 17``)."""

    key: str
    data: bytes


class ReportMailbox(Protocol):
    """Where bounces and complaints are read from (see the module docstring)."""

    def unseen(self) -> Iterator[MailboxMessage]: ...

    def done(self, key: str) -> None: ...

    def keep(self, key: str) -> None: ...

    def close(self) -> None: ...


class Maildir:
    """A Maildir folder (``cur/``, ``new/``, ``tmp/``), as Postfix, Dovecot or Exim deliver to."""

    def __init__(self, path: Path, *, delete: bool = False) -> None:
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise NurtureError(f"{path}: not a Maildir (it needs cur, new and tmp folders)")
        self.path = path
        self.delete = delete

    def unseen(self) -> Iterator[MailboxMessage]:
        # Both folders are listed before the first message is handed out: one
        # kept (moved to cur/, still unseen) must not come round again in this run.
        keys = []
        for sub in ("new", "cur"):
            with os.scandir(self.path / sub) as entries:
                names = sorted(e.name for e in entries if not e.name.startswith("."))
            keys += [
                f"{sub}/{name}"
                for name in names
                if sub == "new" or not {"S", "T"} & set(_flags(name))
            ]
        for key in keys:
            try:
                data = (self.path / key).read_bytes()
            except (FileNotFoundError, IsADirectoryError):
                continue  # taken by another reader meanwhile, or not a message
            yield MailboxMessage(key, data)

    def done(self, key: str) -> None:
        if self.delete:
            with contextlib.suppress(FileNotFoundError):
                (self.path / key).unlink()
            return
        self._flag(key, "S")

    def keep(self, key: str) -> None:
        self._flag(key, "F")

    def close(self) -> None:
        pass

    def _flag(self, key: str, flag: str) -> None:
        """Move the message to ``cur/`` with `flag` added (Maildir's ``:2,FLAGS`` suffix)."""
        name = key.partition("/")[2]
        unique = name.partition(":")[0]
        flags = "".join(sorted(set(_flags(name)) | {flag}))
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.path / key, self.path / "cur" / f"{unique}:2,{flags}")


def _flags(name: str) -> str:
    info = name.partition(":")[2]
    return info[2:] if info.startswith("2,") else ""


#: What `Imap` calls to connect: (host, port, TLS from the start) → an IMAP4 client.
Connect = Callable[[str, int, bool], imaplib.IMAP4]


def _connect(host: str, port: int, tls: bool) -> imaplib.IMAP4:
    context = ssl.create_default_context()
    if tls:
        return imaplib.IMAP4_SSL(host, port, ssl_context=context, timeout=30)
    client = imaplib.IMAP4(host, port, timeout=30)
    client.starttls(ssl_context=context)  # never a password in clear
    return client


class Imap:
    """An IMAP folder: ``imaps://user:password@host[:993]/Folder`` (``imap://`` uses STARTTLS).

    The folder defaults to INBOX. `connect` is for tests (a stand-in client).
    """

    def __init__(self, url: str, *, delete: bool = False, connect: Connect = _connect) -> None:
        parts = urlsplit(url)
        if parts.scheme not in {"imap", "imaps"} or not parts.hostname:
            raise ConfigurationError(
                "NURTURE_BOUNCES_IMAP_URL: expected imaps://user:password@host/Folder "
                "or imap://… (STARTTLS)"
            )
        if not parts.username or parts.password is None:
            raise ConfigurationError("NURTURE_BOUNCES_IMAP_URL: a user and a password are needed")
        tls = parts.scheme == "imaps"
        self.folder = unquote(parts.path.strip("/")) or "INBOX"
        self.delete = delete
        self._deleted = False
        try:
            self._client = connect(parts.hostname, parts.port or (993 if tls else 143), tls)
            self._client.login(unquote(parts.username), unquote(parts.password))
            status, _ = self._client.select(_quoted(self.folder))
        except (OSError, imaplib.IMAP4.error) as exc:
            raise NurtureError(f"IMAP {parts.hostname}: {exc}") from None
        if status != "OK":
            raise NurtureError(f"IMAP {parts.hostname}: no folder {self.folder!r}")

    def unseen(self) -> Iterator[MailboxMessage]:
        status, found = self._client.uid("SEARCH", "UNSEEN")
        if status != "OK":
            raise NurtureError(f"IMAP: the search for unseen messages failed: {found!r}")
        for uid in (found[0] or b"").split():
            status, parts = self._client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
            data = next((p[1] for p in parts if isinstance(p, tuple)), None)
            if status == "OK" and isinstance(data, bytes):
                yield MailboxMessage(f"uid {uid.decode()}", data)

    def done(self, key: str) -> None:
        self._deleted |= self.delete
        self._store(key, "\\Deleted" if self.delete else "\\Seen")

    def keep(self, key: str) -> None:
        self._store(key, "\\Flagged")

    def close(self) -> None:
        with contextlib.suppress(OSError, imaplib.IMAP4.error):
            if self._deleted:
                self._client.expunge()
            self._client.logout()

    def _store(self, key: str, flag: str) -> None:
        self._client.uid("STORE", key.removeprefix("uid "), "+FLAGS", f"({flag})")


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'
