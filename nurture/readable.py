"""Figures and times as a person reads them: one rounding, local times, their language.

Machines (`--json`, the API, webhooks) get exact numbers and ISO times in UTC;
people get `score 25 (fit 10 + engagement 15)` and `4 déc. 16:51 (dans 2 jours)`.
Every place a person reads (`explain`, `handoffs`, the sales inbox and emails,
the digest and its CSV) goes through here, so a score never reads 139.9999 in
one place and 140 in the next, and a salesperson in Paris never gets UTC.

Times take the reader's timezone and language as arguments: callers ask
`nurture.lifecycle.handoff.readers.timezone_for` (sales) or use the project's
`sending.default_timezone`. Month names, date order, the 12/24-hour clock and
"in 2 days" come from the CLDR data through Babel, for any language it knows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_time, format_timedelta

#: The command line's language: English with the day before the month and a
#: 24-hour clock (`4 Dec, 16:51`), as read in Europe where the example sells.
CLI_LANGUAGE = "en_GB"
#: What a missing score reads as.
NO_VALUE = "—"


class UnknownLanguage(ValueError):
    """A language code Babel has no data for (a template's `local_time("xx")`)."""


def zone_of(timezone: str | tzinfo | None) -> tzinfo:
    """The zone named (an IANA name such as ``Europe/Paris``); UTC if none or unknown.

    `validate` refuses an unknown `sending.default_timezone`; a contact's or an
    account's zone may still be stale data, and a page must render anyway.
    """
    if isinstance(timezone, tzinfo):
        return timezone
    if not timezone:
        return UTC
    try:
        return ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return UTC


def locale_of(language: str) -> Locale:
    try:
        return Locale.parse(language.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        raise UnknownLanguage(
            f"unknown language {language!r} (expected e.g. 'fr' or 'en')"
        ) from None


# -- scores -------------------------------------------------------------------------------------


def rounded(value: float) -> int:
    """A score as a whole number, halves away from zero (24.5 → 25, -2.5 → -3).

    Through the decimal text of the float, so 139.9999 is 140 and 24.5 never
    turns into 24 the way Python's `round` (halves to even) would.
    """
    try:
        return int(Decimal(repr(float(value))).quantize(Decimal(1), ROUND_HALF_UP))
    except (InvalidOperation, OverflowError, ValueError):
        return 0  # NaN or infinity: never a score the engine writes


def score(value: float | None) -> str:
    """``25``; ``—`` when there is none."""
    return NO_VALUE if value is None else str(rounded(value))


def score_parts(total: float, fit: float) -> tuple[int, int, int]:
    """Total, fit and engagement as shown: the two parts add up to the total shown.

    Engagement decays continuously, so rounding each figure on its own can
    print `25 (fit 10 + engagement 14)`; the engagement shown is what is left.
    """
    whole, fitted = rounded(total), rounded(fit)
    return whole, fitted, whole - fitted


def score_breakdown(total: float | None, fit: float | None) -> str:
    """``25 (fit 10 + engagement 15)``: the command line's wording."""
    if total is None:
        return NO_VALUE
    whole, fitted, engaged = score_parts(total, fit or 0)
    return f"{whole} (fit {fitted} + engagement {engaged})"


def points(value: float) -> str:
    """A ledger line's points, signed: ``+10``, ``-50``."""
    return f"{rounded(value):+d}"


# -- times --------------------------------------------------------------------------------------


def moment_of(value: datetime | str | None) -> datetime | None:
    """A datetime from a datetime or ISO text (snapshots and payloads hold text); naive is UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def local_time(
    value: datetime | str | None,
    timezone: str | tzinfo | None,
    language: str,
    now: datetime | None = None,
    *,
    year: bool | None = None,
) -> str:
    """``4 Dec, 16:51`` (en_GB), ``4 déc. 16:51`` (fr), with the year when not `now`'s
    (or as `year` says: a report kept for later always names it).

    Text that is not a time comes back as it is; None as "".
    """
    moment = moment_of(value)
    if moment is None:
        return "" if value is None else str(value)
    zone, locale = zone_of(timezone), locale_of(language)
    local = moment.astimezone(zone)
    if year is None:
        year = local.year != (now or datetime.now(UTC)).astimezone(zone).year
    day = format_skeleton("yMMMd" if year else "MMMd", local, locale=locale)
    clock = format_time(local, "short", locale=locale)
    return str(locale.datetime_formats["short"]).replace("{1}", day).replace("{0}", clock)


def relative(value: datetime | str | None, now: datetime, language: str) -> str:
    """``in 2 days``, ``3 hours ago``, ``dans 2 jours``: from `now`, in round units."""
    moment = moment_of(value)
    if moment is None:
        return ""
    return str(format_timedelta(moment - now, add_direction=True, locale=locale_of(language)))


def local_time_from_now(
    value: datetime | str | None,
    timezone: str | tzinfo | None,
    language: str,
    now: datetime,
) -> str:
    """``4 Dec, 16:51 (in 2 days)``."""
    if moment_of(value) is None:
        return local_time(value, timezone, language, now)
    return f"{local_time(value, timezone, language, now)} ({relative(value, now, language)})"


def length(seconds: float | timedelta | None, language: str) -> str:
    """A span without direction, in its largest round unit: ``2 days``, ``5 heures``."""
    if seconds is None:
        return ""
    span = seconds if isinstance(seconds, timedelta) else timedelta(seconds=float(seconds))
    return str(format_timedelta(abs(span), locale=locale_of(language)))


def stamp(value: datetime | str | None, timezone: str | tzinfo | None) -> str:
    """``2026-12-15 13:00`` in the reader's zone: for CSV, which spreadsheets sort and parse."""
    moment = moment_of(value)
    if moment is None:
        return ""
    return moment.astimezone(zone_of(timezone)).strftime("%Y-%m-%d %H:%M")
