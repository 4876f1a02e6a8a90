"""Send windows in the contact's timezone (across DST) and frequency caps: deferred, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions import model as m
from nurture.definitions.loader import load_project
from nurture.delivery.policy import cap_release, may_send, next_window_opening
from nurture.engine.service import Engine
from nurture.lifecycle.importer import import_contacts
from nurture.records import Record
from nurture.store.models import Send
from nurture.testing import write_project
from nurture.tokens import Signer
from nurture.tools.explain import explain
from nurture.transports import CaptureTransport

WEEKDAYS_9_TO_18 = m.SendWindow(frozenset(range(5)), time(9), time(18))
EVERY_DAY_9_TO_18 = m.SendWindow(frozenset(range(7)), time(9), time(18))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "timezone", "expected"),
    [
        (utc(2026, 11, 23, 10, 0), "Europe/Paris", None),  # Monday 11:00 in Paris: open
        (utc(2026, 11, 23, 6, 0), "Europe/Paris", utc(2026, 11, 23, 8, 0)),  # 07:00 → 09:00
        (utc(2026, 11, 23, 17, 30), "Europe/Paris", utc(2026, 11, 24, 8, 0)),  # 18:30 → tomorrow
        (
            utc(2026, 11, 27, 18, 0),
            "Europe/Paris",
            utc(2026, 11, 30, 8, 0),
        ),  # Friday 19:00 → Monday
        (utc(2026, 11, 28, 12, 0), "Europe/Paris", utc(2026, 11, 30, 8, 0)),  # Saturday → Monday
        # the same instant is inside Montreal's window only once it is 09:00 there
        (utc(2026, 11, 23, 10, 0), "America/Montreal", utc(2026, 11, 23, 14, 0)),
    ],
)
def test_the_window_is_in_the_contacts_timezone(
    now: datetime, timezone: str, expected: datetime | None
) -> None:
    assert next_window_opening(WEEKDAYS_9_TO_18, now, timezone) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        # Saturday 28 March 2026, CET (UTC+1): 09:00 local is 08:00 UTC
        (utc(2026, 3, 28, 6, 0), utc(2026, 3, 28, 8, 0)),
        # Sunday 29 March, clocks go forward at 01:00 UTC: 09:00 CEST is 07:00 UTC
        (utc(2026, 3, 29, 5, 0), utc(2026, 3, 29, 7, 0)),
        # Sunday 25 October, clocks go back at 01:00 UTC: 09:00 CET is 08:00 UTC
        (utc(2026, 10, 25, 6, 0), utc(2026, 10, 25, 8, 0)),
        # Saturday 24 October, still CEST: 09:00 is 07:00 UTC
        (utc(2026, 10, 24, 5, 0), utc(2026, 10, 24, 7, 0)),
        # 18:30 on the spring day is after the window: the next day's 09:00 CEST
        (utc(2026, 3, 29, 16, 30), utc(2026, 3, 30, 7, 0)),
    ],
)
def test_the_window_follows_wall_time_on_both_dst_switch_days(
    now: datetime, expected: datetime
) -> None:
    assert next_window_opening(EVERY_DAY_9_TO_18, now, "Europe/Paris") == expected


def test_a_window_opening_at_a_time_that_does_not_exist_opens_at_the_first_real_instant() -> None:
    night = m.SendWindow(frozenset(range(7)), time(2, 30), time(4))
    # 02:30 does not exist in Paris on 29 March 2026: 01:59 CET is followed by 03:00 CEST
    assert next_window_opening(night, utc(2026, 3, 29, 0, 0), "Europe/Paris") == utc(
        2026, 3, 29, 1, 30
    )


def test_the_cap_defers_until_the_oldest_counted_send_ages_out() -> None:
    cap = m.FrequencyCap(max=3, per=timedelta(days=7))
    day = utc(2026, 11, 23, 10, 0)
    sends = [day, day + timedelta(days=1), day + timedelta(days=2)]
    assert cap_release(cap, sends[:2], day + timedelta(days=3)) is None
    assert cap_release(cap, sends, day + timedelta(days=3)) == day + timedelta(days=7)
    assert cap_release(cap, sends, day + timedelta(days=7, seconds=1)) is None


def test_cap_and_window_together_land_on_a_moment_both_allow() -> None:
    sending = m.Sending(
        window=WEEKDAYS_9_TO_18,
        frequency_cap=m.FrequencyCap(3, timedelta(days=7)),
        default_timezone="Europe/Paris",
    )
    tuesday = utc(2026, 11, 24, 10, 0)
    recent = [tuesday - timedelta(days=2, hours=12), tuesday - timedelta(hours=3), tuesday]
    deferral = may_send(sending, "Europe/Paris", recent, tuesday + timedelta(hours=1))
    assert deferral is not None and deferral.reason == "cap"
    # released Saturday 21:00 Paris (Saturday 28th 20:00 UTC) → next weekday opening: Monday 09:00
    assert deferral.until == utc(2026, 11, 30, 8, 0)


CONFIG = """\
stages: [subscriber, lead, sql]
prospect_stage: sql
sending:
  window: {days: [mon, tue, wed, thu, fri], hours: "09:00-18:00"}
  default_timezone: Europe/Paris
  frequency_cap: {max: 2, per: 7d}
"""
WORKFLOW = """\
name: lead
enroll: {stage: lead}
steps:
  - send: t/one
  - send: t/two
  - send: t/three
"""


def test_the_engine_defers_capped_and_out_of_window_sends_and_explains_why(
    tmp_path: Path, sessions: sessionmaker[Session]
) -> None:
    root = write_project(
        tmp_path / "p",
        CONFIG,
        {"lead": WORKFLOW},
        {
            f"t/{name}": f'---\nsubject: "{name}"\n---\n<mjml><mj-body><mj-section><mj-column>'
            "<mj-text>x</mj-text></mj-column></mj-section></mj-body></mjml>\n"
            for name in ("one", "two", "three")
        },
    )
    records: list[Record] = []
    transport = CaptureTransport()
    virtual = clock.VirtualClock(utc(2026, 11, 28, 10, 0))  # a Saturday
    with clock.using(virtual):
        engine = Engine(
            load_project(root), sessions, transport, Signer("k" * 32), record=records.append
        )
        (tmp_path / "c.csv").write_text("email,stage\nanne@example.com,lead\n")
        import_contacts(
            sessions,
            tmp_path / "c.csv",
            stages=("subscriber", "lead", "sql"),
            on_batch=engine.on_import,
        )

        def run() -> None:
            while ids := engine.claim_due():
                engine.advance(ids)

        run()
        assert transport.messages == []
        [skip] = [r for r in records if r.kind == "skip"]
        assert skip.details["reason"] == "window"
        with sessions() as session:
            data = explain(session, engine, "anne@example.com", clock.now())
        assert "outside the send window" in data["enrollments"][0]["next"]

        virtual.advance_to(utc(2026, 11, 30, 8, 0))  # Monday 09:00 in Paris
        run()
        assert [m.email.subject for m in transport.messages] == ["one", "two"]  # then the cap
        skips = [r for r in records if r.kind == "skip"]
        assert skips[-1].details["reason"] == "cap"

        virtual.advance_to(utc(2026, 12, 7, 8, 0))
        run()
        assert [m.email.subject for m in transport.messages] == ["one", "two", "three"]
        with sessions() as session:
            assert session.scalars(select(Send.status)).all() == ["sent", "sent", "sent"]
