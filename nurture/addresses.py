"""What an email address is to nurture: one form per mailbox.

Every door (a file, the API, an event, a webhook, `nurture suppress`, the
project's own files) takes addresses through `canonical_email`, so one
mailbox is one contact, one suppression entry, one owner. A basic module:
definitions (owners in nurture.yaml), contacts and the store all use it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import email_validator

# A syntactic check, strict where real mail systems are: dot-atom local part
# (no quoted forms), host names of letters, digits and inner hyphens, a TLD
# of letters only (or punycode). Unicode letters are allowed (SMTPUTF8, IDN).
_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]+(?:\.[\w!#$%&'*+/=?^`{|}~-]+)*"
    r"@(?:[^\W_](?:(?:[^\W_]|-){0,61}[^\W_])?\.)+"
    r"(?:[^\W\d_]{2,63}|xn--[a-z0-9-]{1,59})"
)


def email_problem(value: str) -> str | None:
    """Why `value` is not an address nurture can keep, or None (see `canonical_email`)."""
    try:
        _canonical(value)
    except ValueError as exc:
        return str(exc)
    return None


def canonical_email(value: str) -> str | None:
    """The one form of an address, or None if it is not one.

    One mailbox, one contact: the domain in Unicode NFC whatever form it came
    in (``xn--bcher-kva.example`` and ``bücher.example`` are one domain), the
    local part in NFC (an address typed with combining accents is the same
    address), all lower-cased (nurture treats addresses without case, as every
    mail system people use does). The normalisation is `email-validator`'s
    (IDNA 2008, UTS #46), the library pydantic's `EmailStr` uses.
    """
    try:
        return _canonical(value)
    except ValueError:
        return None


def normalise_email(value: str) -> str:
    """`canonical_email`, or the value stripped and lower-cased if it is no address
    (a lookup of something that was never an address then simply finds nothing)."""
    return canonical_email(value) or value.strip().lower()


def is_valid_email(email: str) -> bool:
    """Syntax only (no DNS): whether `email` is an address nurture can keep."""
    return canonical_email(email) is not None


def _canonical(value: str) -> str:
    text = value.strip()
    if len(text) > 320:
        raise ValueError("too long for an address")
    if text.isascii():
        lowered = text.lower()
        if (
            _EMAIL.fullmatch(lowered)
            and "xn--" not in lowered
            and lowered.rpartition(".")[2] not in _SPECIAL_USE
            and len(lowered) <= 254
            and len(lowered.rpartition("@")[0]) <= 64
        ):
            return lowered  # what email-validator would make of it, without the cost
    return _validated(text)


#: Top-level domains reserved for special use (RFC 6761): never a real mailbox.
_SPECIAL_USE = frozenset(email_validator.SPECIAL_USE_DOMAIN_NAMES)


@lru_cache(maxsize=65536)
def _validated(text: str) -> str:
    try:
        found = email_validator.validate_email(
            text, check_deliverability=False, allow_smtputf8=True
        )
    except email_validator.EmailNotValidError as exc:
        reason = str(exc).rstrip(".")
        raise ValueError(reason[:1].lower() + reason[1:]) from None
    local, domain = found.local_part, found.domain
    folded = unicodedata.normalize("NFKC", local)
    if folded != local:
        raise ValueError(
            f"the part before the @ holds full-width or compatibility characters "
            f"(did you mean {folded.lower()}@{domain}?)"
        )
    ascii_domain = found.ascii_domain
    address = f"{local}@{domain}".lower()
    if _EMAIL.fullmatch(f"{local}@{ascii_domain}".lower()) is None:
        raise ValueError("not an address nurture can email")
    if len(f"{local}@{ascii_domain}") > 254 or len(local) > 64:
        raise ValueError("too long for an address")
    return address
