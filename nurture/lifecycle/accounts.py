"""Sales accounts: who may sign in to the inbox, and which handoffs each may act on.

One account per salesperson, named by the address handoffs are assigned to
(`owner`), so "whose handoff" and "who acted" are the same value. Roles:

- ``sales`` acts on their own handoffs (and asks for a reassignment);
- ``lead`` acts on all of them, and gives one to someone else;
- ``admin`` too, and manages the accounts.

People sign in with a password, kept only as an Argon2id hash (argon2-cffi's
defaults, which follow RFC 9106). They choose it through a one-time link:
issued when the account is created or reset (printed for the admin to pass
on), or, for a handoff owner without an account, in the handoff email (a
sign-up for that address only). A link is a random token whose SHA-256 alone
is stored; it works once, for `LINK_TTL` (a sign-up `SIGNUP_TTL`), and a new
link voids the older ones. Using it ends the account's sessions and lifts a
lockout (`nurture.lifecycle.signin`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from nurture.addresses import canonical_email, email_problem
from nurture.definitions import model as m
from nurture.errors import NurtureError
from nurture.store import accounts as store
from nurture.store.models import Account, AccountLink

Role = Literal["sales", "lead", "admin"]
ROLES: tuple[Role, ...] = ("sales", "lead", "admin")
#: How long a set-password link (new account, reset) works.
LINK_TTL = timedelta(hours=24)
#: How long the sign-up link of a handoff email works (the email may wait a weekend).
SIGNUP_TTL = timedelta(days=7)
MIN_PASSWORD = 10
#: Longer passwords are refused before hashing: nobody types more, and hashing is work.
MAX_PASSWORD = 1024
MAX_NAME = 200

_hasher = PasswordHasher()
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})?")


class AccountError(NurtureError):
    """An account operation that cannot be done as asked (the message says why)."""


@dataclass(frozen=True)
class Person:
    """An account as the web pages hold it, past the transaction that read it."""

    id: int
    email: str
    name: str
    role: str
    timezone: str
    language: str

    @classmethod
    def of(cls, account: Account) -> Person:
        return cls(
            account.id,
            account.email,
            account.name,
            account.role,
            account.timezone,
            account.language,
        )


def token_id(token: str) -> str:
    """What is stored of a session or link token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def account_email(value: str) -> str:
    """The canonical form of an account's address; `AccountError` if it is none."""
    found = canonical_email(value)
    if found is None:
        raise AccountError(f"not an email address: {value[:100]!r} ({email_problem(value)})")
    return found


def name_from_email(email: str) -> str:
    """marc.leroy@example.com → Marc Leroy (a first guess, which people can change)."""
    local = email.split("@", 1)[0]
    words = [w for w in re.split(r"[._+-]+", local) if w]
    return " ".join(w.capitalize() for w in words) or email


def _check_fields(name: str, role: str, timezone: str, language: str) -> None:
    if not name.strip() or len(name) > MAX_NAME:
        raise AccountError(f"a name is required (at most {MAX_NAME} characters)")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise AccountError(
            f"unknown timezone {timezone!r} (an IANA name, e.g. Europe/Paris)"
        ) from None
    if not _LANGUAGE.fullmatch(language):
        raise AccountError(f"not a language code: {language!r} (e.g. fr, en, fr-CA)")


def add(
    session: Session,
    email: str,
    name: str,
    role: str,
    timezone: str,
    now: datetime,
    language: str = "fr",
) -> Account:
    """A new account, no password yet (`issue_link` gives the way in)."""
    address = account_email(email)
    _check_fields(name, role, timezone, language)
    if store.account_by_email(session, address) is not None:
        raise AccountError(f"{address} already has an account")
    return store.add_account(
        session,
        Account(
            email=address,
            name=name.strip(),
            role=role,
            timezone=timezone,
            language=language,
            created_at=now,
        ),
    )


def get(session: Session, email: str) -> Account:
    """The account of this address; `AccountError` if there is none."""
    found = store.account_by_email(session, account_email(email))
    if found is None:
        raise AccountError(f"no account for {email[:100]} (nurture users add)")
    return found


def update(
    session: Session,
    email: str,
    *,
    name: str | None = None,
    role: str | None = None,
    timezone: str | None = None,
    language: str | None = None,
) -> Account:
    account = get(session, email)
    new_name, new_role = name or account.name, role or account.role
    new_zone, new_language = timezone or account.timezone, language or account.language
    _check_fields(new_name, new_role, new_zone, new_language)
    account.name, account.role = new_name.strip(), new_role
    account.timezone, account.language = new_zone, new_language
    return account


def disable(session: Session, email: str, now: datetime) -> Account:
    """No more sign-in: its sessions end and its unused links stop working at once."""
    account = get(session, email)
    if account.disabled_at is None:
        account.disabled_at = now
    store.delete_sessions_of(session, account.id)
    store.delete_links_for(session, account.email)
    return account


def enable(session: Session, email: str) -> Account:
    account = get(session, email)
    account.disabled_at = None
    return account


def issue_link(session: Session, account: Account, now: datetime) -> str:
    """A one-time set-password token for `account`; the older ones stop working."""
    if account.disabled_at is not None:
        raise AccountError(f"{account.email}'s account is disabled (nurture users enable)")
    store.delete_links_for(session, account.email)
    token = secrets.token_urlsafe(32)
    store.insert_link(
        session,
        AccountLink(
            id=token_id(token),
            purpose="password",
            email=account.email,
            account_id=account.id,
            created_at=now,
            expires_at=now + LINK_TTL,
        ),
    )
    return token


def signup_token(session: Session, email: str, now: datetime) -> str | None:
    """A one-time sign-up token for an owner without an account (None if the address
    has an account, disabled or not: a disabled person is not offered a new one).

    Each email carries its own; the first used creates the account and voids the rest.
    """
    address = canonical_email(email)
    if address is None or store.account_by_email(session, address) is not None:
        return None
    store.delete_expired_links(session, now)
    token = secrets.token_urlsafe(32)
    store.insert_link(
        session,
        AccountLink(
            id=token_id(token),
            purpose="signup",
            email=address,
            account_id=None,
            created_at=now,
            expires_at=now + SIGNUP_TTL,
        ),
    )
    return token


def valid_link(session: Session, token: str, now: datetime) -> AccountLink | None:
    """The link of this token if it can still be used."""
    if not token or len(token) > 200:
        return None
    link = store.link_by_id(session, token_id(token))
    if link is None or link.expires_at <= now:
        return None
    return link


def password_problem(password: str, email: str) -> str | None:
    """Why a new password is refused (French: said to the person choosing it), or None."""
    if len(password) < MIN_PASSWORD:
        return f"Le mot de passe doit compter au moins {MIN_PASSWORD} caractères."
    if len(password) > MAX_PASSWORD:
        return f"Le mot de passe doit compter au plus {MAX_PASSWORD} caractères."
    if password.strip().lower() in {email.lower(), email.split("@")[0].lower()}:
        return "Le mot de passe ne peut pas être votre adresse e-mail."
    return None


@dataclass(frozen=True)
class PasswordSet:
    """A link used: the account whose password it set (created, for a sign-up)."""

    account: Account
    created: bool


def use_link(
    session: Session,
    link: AccountLink,
    password: str,
    now: datetime,
    *,
    name: str | None = None,
    timezone: str = "UTC",
) -> PasswordSet:
    """Set the password the link was for, then void it and every other way in: the
    account's sessions end, its other links go, its lockout is lifted. A sign-up
    link creates a ``sales`` account named `name` first. Messages in French: they
    are said to the person on the password page."""
    problem = password_problem(password, link.email)
    if problem:
        raise AccountError(problem)
    created = False
    if link.purpose == "signup":
        if store.account_by_email(session, link.email) is not None:
            store.delete_links_for(session, link.email)
            raise AccountError(f"{link.email} a déjà un compte : connectez-vous.")
        account = add(
            session, link.email, name or name_from_email(link.email), "sales", timezone, now
        )
        created = True
    else:
        found = store.account_by_id(session, link.account_id or 0)
        if found is None or found.disabled_at is not None:
            raise AccountError("Ce compte est désactivé.")
        account = found
    account.password_hash = _hasher.hash(password)
    account.password_changed_at = now
    store.delete_links_for(session, account.email)
    store.delete_sessions_of(session, account.id)
    store.clear_throttle(session, throttle_key(account.email))
    return PasswordSet(account, created)


def throttle_key(email: str) -> str:
    """The failed sign-ins of an address (the canonical form when it is one)."""
    return "account:" + (canonical_email(email) or email.strip().lower())[:320]


@cache
def _dummy_hash() -> str:
    """Verified against when the address has no usable account, so that a sign-in takes
    as long whether or not the account exists (made on first use: hashing takes time)."""
    return _hasher.hash(secrets.token_urlsafe(16))


def password_matches(account: Account | None, password: str) -> bool:
    """Whether `password` is the account's; as slow when there is no usable account."""
    usable = account is not None and account.disabled_at is None and account.password_hash
    stored = account.password_hash if usable and account is not None else None
    try:
        _hasher.verify(stored or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


def unlock(session: Session, email: str) -> None:
    """The account's failed sign-ins forgotten, its lockout lifted."""
    store.clear_throttle(session, throttle_key(email))


# --- what each role may do --------------------------------------------------------------------


def sees_all(account: Person | Account) -> bool:
    """Leads and admins see and act on every handoff; sales their own."""
    return account.role in ("lead", "admin")


def may_act_on(account: Person | Account, owner: str | None) -> bool:
    """Whether `account` may accept, reject or reopen a handoff owned by `owner`."""
    return sees_all(account) or (owner is not None and owner.lower() == account.email)


def manages_accounts(account: Person | Account) -> bool:
    return account.role == "admin"


def owners_named(config: m.ProjectConfig) -> dict[str, Role]:
    """The people `handoff` names in nurture.yaml, with the role each account gets:
    assignees (round-robin, rules) ``sales``, the escalation contact ``lead``."""
    rules = config.handoff
    if rules is None:
        return {}
    found: dict[str, Role] = {}
    for owner in [*rules.assign.round_robin, *(r.owner for r in rules.assign.rules)]:
        if owner and "@" in owner:
            found.setdefault(owner.lower(), "sales")
    escalate = rules.sla.escalate_to
    if escalate and "@" in escalate:
        found[escalate.lower()] = "lead"
    return found
