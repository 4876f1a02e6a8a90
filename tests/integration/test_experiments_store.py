"""A variant test's figures and its winner in the database, on SQLite and PostgreSQL:
a person's clicks count once per email, a machine's never; a winner stored once stays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from nurture.store import experiments as store
from nurture.store.models import Contact, Event, Send

NOW = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(sessions_on_each_database: sessionmaker[Session]) -> sessionmaker[Session]:
    return sessions_on_each_database


def test_a_persons_clicks_count_once_per_email_and_a_machines_never(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        contacts = [Contact(email=f"c{n}@example.com") for n in range(3)]
        session.add_all(contacts)
        session.flush()
        sends = [
            Send(
                claim_key=f"k{n}",
                contact_id=contact.id,
                workflow="lead",
                step="guide",
                template=f"lead/guide-{variant}",
                variant=variant,
                status="sent",
                sent_at=NOW,
            )
            for n, (contact, variant) in enumerate(zip(contacts, "aab", strict=True))
        ]
        session.add_all(sends)
        session.flush()
        clicks = [
            (sends[0], "human"),
            (sends[0], "human"),
            (sends[1], "machine"),
            (sends[2], "human"),
        ]
        session.add_all(
            Event(
                event_id=f"e{n}",
                type="email.clicked",
                at=NOW + timedelta(hours=1),
                contact_id=send.contact_id,
                properties={"send_id": send.id},
                traffic=traffic,
            )
            for n, (send, traffic) in enumerate(clicks)
        )
        ids = [s.id for s in sends]
    with sessions() as session:
        found = store.sends_with(session, "lead", "guide", ["email.clicked", "email.opened"])
        assert found == {"email.clicked": {ids[0], ids[2]}, "email.opened": set()}
        tested = store.variant_sends(session, "lead", "guide", NOW, NOW + timedelta(1))
        assert sorted((s.id, s.variant) for s in tested) == list(zip(ids, "aab", strict=True))


def test_a_winner_stored_once_stays_whoever_decides_next(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        first, ours = store.keep_winner(
            session, "lead", "guide", "t1", "b", "human_clicks", NOW, {"p_values": {"a": 0.01}}
        )
        assert (first.variant, ours) == ("b", True)
    with sessions.begin() as session:
        again, ours = store.keep_winner(
            session, "lead", "guide", "t1", "a", "human_clicks", NOW, {}
        )
        assert (again.variant, ours) == ("b", False)
        # Another test of the same step (a new challenger) is decided afresh.
        other, ours = store.keep_winner(
            session, "lead", "guide", "t2", "a", "human_clicks", NOW, {}
        )
        assert (other.variant, ours) == ("a", True)
    with sessions() as session:
        kept = store.winners(session)[("lead", "guide", "t1")]
        assert (kept.variant, kept.decided_at, kept.details) == (
            "b",
            NOW,
            {"p_values": {"a": 0.01}},
        )
