"""`nurture.tools.reports`: every figure on a small hand-built dataset with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session

from nurture.definitions.loader import load_project
from nurture.store.models import Contact, Event, Handoff, Send, StageHistory
from nurture.tools.report_html import render_html
from nurture.tools.reports import build_report

REPO = Path(__file__).parents[2]
SINCE = datetime(2026, 11, 1, tzinfo=UTC)
UNTIL = datetime(2026, 12, 1, tzinfo=UTC)
NOW = datetime(2026, 12, 10, tzinfo=UTC)
DAY = 86400.0


def nov(day: int) -> datetime:
    return datetime(2026, 11, day, tzinfo=UTC)


@pytest.fixture
def report(session: Session) -> dict[str, Any]:
    people = {
        name: Contact(email=f"{name}@example.com", stage=stage)
        for name, stage in (("a", "mql"), ("b", "lead"), ("c", "subscriber"), ("d", "sql"))
    }
    session.add_all(people.values())
    session.flush()
    a, b, c, d = (people[n].id for n in "abcd")
    moves = [
        (a, None, "subscriber", nov(2)),
        (a, "subscriber", "lead", nov(4)),
        (a, "lead", "mql", nov(10)),
        (b, None, "subscriber", nov(3)),
        (b, "subscriber", "lead", nov(9)),
        (c, None, "subscriber", nov(5)),
        (d, None, "subscriber", datetime(2026, 10, 20, tzinfo=UTC)),
        (d, "subscriber", "lead", nov(20)),
        (d, "lead", "sql", datetime(2026, 12, 5, tzinfo=UTC)),  # skips mql, after the period
    ]
    session.add_all(
        StageHistory(contact_id=who, from_stage=f, to_stage=t, at=at, cause="test")
        for who, f, t, at in moves
    )
    sends = [
        Send(
            claim_key=f"k{i}",
            contact_id=who,
            workflow="lead-nurture",
            step="welcome",
            template="lead/welcome",
            status="sent",
            sent_at=nov(12),
        )
        for i, who in enumerate((a, b, c, d))
    ]
    sends.append(
        Send(
            claim_key="skip",
            contact_id=a,
            workflow="lead-nurture",
            step="welcome",
            template="lead/welcome",
            status="skipped",
        )
    )
    sends.append(
        Send(
            claim_key="old",
            contact_id=a,
            workflow="subscriber-newsletter",
            step="monthly",
            template="subscriber/monthly",
            status="sent",
            sent_at=datetime(2026, 10, 2, tzinfo=UTC),
        )
    )
    session.add_all(sends)
    session.flush()
    s1, s2, s3, s4, _, old = (s.id for s in sends)
    reactions = [
        (s1, "email.delivered"),
        (s1, "email.opened"),
        (s1, "email.opened"),
        (s1, "email.clicked"),
        (s2, "email.delivered"),
        (s2, "email.opened"),
        (s3, "email.bounced"),
        (s4, "email.delivered"),
        (s4, "email.unsubscribed"),
        (old, "email.opened"),
    ]
    # A gateway clicked s1's and s2's links and opened s3; Anne opened s1 again.
    machines = [
        (s1, "email.clicked", "machine"),
        (s1, "email.clicked", "machine"),
        (s2, "email.clicked", "machine"),
        (s3, "email.opened", "machine"),
        (s1, "email.opened", "repeat"),
    ]
    session.add_all(
        Event(
            event_id=f"e{n}",
            type=kind,
            at=nov(13),
            contact_id=a,
            properties={"send_id": send, "template": "lead/welcome"},
            traffic=traffic,
            traffic_reason=None if traffic == "human" else "test",
        )
        for n, (send, kind, traffic) in enumerate(
            [(send, kind, "human") for send, kind in reactions] + machines
        )
    )
    # An event naming its email by template only counts once per contact.
    session.add_all(
        Event(
            event_id=f"t{n}",
            type="email.complained",
            at=nov(14),
            contact_id=b,
            properties={"workflow": "lead-nurture", "template": "lead/welcome"},
        )
        for n in range(2)
    )
    handoffs = [  # (status, score, days to decide)
        ("accepted", 95, 1),
        ("accepted", 130, 3),
        ("rejected", 110, 1),
        ("rejected", 160, 2),
        ("accepted", 170, 2),
        ("open", 105, None),
    ]
    for status, score, days in handoffs:
        decided = nov(10) + timedelta(days=days) if days else None
        session.add(
            Handoff(
                contact_id=a,
                status=status,
                created_at=nov(10),
                accepted_at=decided if status == "accepted" else None,
                rejected_at=decided if status == "rejected" else None,
                snapshot={"score": {"total": score}},
            )
        )
    session.add(
        Handoff(
            contact_id=b,
            status="accepted",
            created_at=datetime(2026, 10, 1, tzinfo=UTC),
            accepted_at=datetime(2026, 10, 2, tzinfo=UTC),
            snapshot={"score": {"total": 50}},
        )
    )  # before the period
    session.flush()
    return build_report(session, load_project(REPO), SINCE, UNTIL, now=NOW)


def test_volume_per_stage_now_and_entered_in_the_period(report: dict[str, Any]) -> None:
    stages = {row["stage"]: row for row in report["stages"]}
    assert [s["contacts"] for s in report["stages"]] == [1, 1, 1, 1, 0, 0]
    assert stages["subscriber"]["entered"] == 3  # d entered in October
    assert stages["lead"]["entered"] == 3
    assert stages["sql"]["entered"] == 0  # December


def test_cohort_conversion_counts_later_moves_and_skipped_stages(report: dict[str, Any]) -> None:
    conversion = {(r["from"], r["to"]): r for r in report["conversion"]}
    assert conversion[("subscriber", "lead")] | {} == {
        "from": "subscriber",
        "to": "lead",
        "entered": 3,
        "converted": 2,
        "rate": 2 / 3,
    }
    # d went lead → sql in December (after the period, before now): counted.
    assert conversion[("lead", "mql")]["converted"] == 2
    assert conversion[("mql", "sql")]["rate"] == 0.0
    assert conversion[("sql", "opportunity")]["rate"] is None


def test_time_in_stage_mean_median_and_open_stays(report: dict[str, Any]) -> None:
    times = {row["stage"]: row for row in report["time_in_stage"]}
    subscriber = times["subscriber"]
    assert (subscriber["stays"], subscriber["open"]) == (3, 1)  # c is still a subscriber
    assert subscriber["median_seconds"] == 6 * DAY
    assert subscriber["mean_seconds"] == pytest.approx((2 + 6 + 35) / 3 * DAY)
    lead = times["lead"]
    assert (lead["stays"], lead["open"], lead["median_seconds"]) == (3, 1, 15 * DAY)
    assert times["customer"]["median_seconds"] is None


def test_email_stats_count_once_per_send_with_rates(report: dict[str, Any]) -> None:
    [welcome] = report["emails"]  # the October newsletter is outside the period
    assert welcome["template"] == "lead/welcome"
    counts = {
        k: welcome[k]
        for k in ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "complained")
    }
    assert counts == {
        "sent": 4,
        "delivered": 3,
        "opened": 2,
        "clicked": 1,
        "unsubscribed": 1,
        "bounced": 1,
        "complained": 1,
    }
    assert welcome["rates"]["opened"] == 0.5
    assert welcome["rates"]["clicked"] == 0.25
    [workflow] = report["workflows"]
    assert (workflow["workflow"], workflow["emails"], workflow["sent"]) == ("lead-nurture", 1, 4)


def test_machine_and_repeat_signals_are_counted_apart_from_a_persons(
    report: dict[str, Any],
) -> None:
    """Rates are on people's opens and clicks; a gateway's and the repeats are beside them."""
    [welcome] = report["emails"]
    assert (welcome["opened"], welcome["clicked"]) == (2, 1)  # as before the machines came
    assert welcome["machine"] == {"opened": 1, "clicked": 2}  # sends, once each
    assert welcome["repeat"] == {"opened": 1, "clicked": 0}
    assert welcome["rates"]["clicked"] == 0.25
    [workflow] = report["workflows"]
    assert (workflow["clicked"], workflow["machine"], workflow["repeat"]) == (
        1,
        {"opened": 1, "clicked": 2},
        {"opened": 1, "clicked": 0},
    )


def test_template_only_events_keep_their_class_too(session: Session) -> None:
    """A simulation's or an import's events name the email by template: still apart."""
    anne = Contact(email="anne@example.com", stage="lead")
    session.add(anne)
    session.flush()
    session.add(
        Send(
            claim_key="k",
            contact_id=anne.id,
            workflow="lead-nurture",
            step="welcome",
            template="lead/welcome",
            status="sent",
            sent_at=nov(12),
        )
    )
    named = {"workflow": "lead-nurture", "template": "lead/welcome"}
    session.add_all(
        Event(
            event_id=f"e{n}",
            type="email.clicked",
            at=nov(12),
            contact_id=anne.id,
            properties=named,
            traffic=traffic,
        )
        for n, traffic in enumerate(("machine", "human"))
    )
    session.flush()
    [welcome] = build_report(session, load_project(REPO), SINCE, UNTIL, now=NOW)["emails"]
    assert (welcome["clicked"], welcome["machine"]["clicked"]) == (1, 1)


def test_handoff_acceptance_and_time_to_accept(report: dict[str, Any]) -> None:
    handoffs = report["handoffs"]
    assert (handoffs["created"], handoffs["accepted"], handoffs["rejected"], handoffs["open"]) == (
        6,
        3,
        2,
        1,
    )
    assert handoffs["acceptance_rate"] == 0.6
    assert handoffs["time_to_accept"] == {"mean_seconds": 2 * DAY, "median_seconds": 2 * DAY}


def test_calibration_bands_around_the_handoff_threshold(report: dict[str, Any]) -> None:
    calibration = report["calibration"]
    assert calibration["threshold"] == 100
    bands = {
        b["band"]: (b["accepted"], b["rejected"], b["acceptance_rate"])
        for b in calibration["bands"]
    }
    assert bands == {
        "< 100": (1, 0, 1.0),
        "100–120": (0, 1, 0.0),
        "120–150": (1, 0, 1.0),
        "≥ 150": (1, 1, 0.5),
    }


def test_the_html_report_is_self_contained_with_charts(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert page.count("<svg") >= 3
    assert "lead/welcome" in page and "66.7 %" in page
    assert "<th>machine (opened / clicked)</th>" in page and "<td>1 / 2</td>" in page


def test_the_printed_report_shows_machine_and_repeat_columns(
    report: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rich.console import Console

    import nurture.cli.common as cli
    from nurture.cli.reports import print_report

    console = Console(record=True, width=250)
    monkeypatch.setattr(cli, "console", console)
    print_report(report)
    text = console.export_text()
    assert "machine o/c" in text and "repeat o/c" in text
    [row] = [line for line in text.splitlines() if "lead/welcome" in line]
    assert "1 25.0%" in row and "1 / 2" in row and "1 / 0" in row
    assert "machine o/c: emails a mail gateway" in text
