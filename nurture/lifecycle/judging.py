"""The traffic classifier applied to a batch of events, with the history it needs.

`nurture.lifecycle.traffic` decides one open or click from what it is given;
this gathers that, inside the ingest's transaction: when each email left
(its row locked on PostgreSQL, so two replays of one link arriving together
are judged one after the other, never both first) and the email's earlier
opens and clicks. Events of one batch see each other in time order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from nurture.definitions.model import Tracking
from nurture.events import EventType, Traffic
from nurture.lifecycle.incoming import IncomingEvent
from nurture.lifecycle.traffic import (
    BURST_REASON,
    CLASSIFIED,
    HUMAN,
    Earlier,
    Verdict,
    burst_partners,
    classify,
)
from nurture.store.events import signals_since
from nurture.store.sends import sent_times


@dataclass
class Judgement:
    """Each classified event's verdict by its index in the batch, and the recorded
    clicks a new one revealed as part of a burst (to mark machine, points taken back)."""

    verdicts: dict[int, Verdict] = field(default_factory=dict)
    #: (index of the click that revealed it, id of the recorded click in the burst)
    bursts: list[tuple[int, str]] = field(default_factory=list)

    def of(self, index: int) -> Verdict:
        return self.verdicts.get(index, HUMAN)


def send_of(event: IncomingEvent) -> int | None:
    """The send an open or click is about (its `send_id` property), if any."""
    value = event.properties.get("send_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def judge(
    session: Session,
    events: Sequence[IncomingEvent],
    candidates: Sequence[int],
    contact_of: dict[int, int],
    settings: Tracking,
) -> Judgement:
    """Verdicts for the opens and clicks among `events[i] for i in candidates` that
    name a send; `contact_of` maps those indexes to their contact's id."""
    judgement = Judgement()
    wanted = [
        (index, send_id)
        for index in candidates
        if events[index].type in CLASSIFIED and (send_id := send_of(events[index])) is not None
    ]
    if not wanted:
        return judgement
    sent = sent_times(session, {send_id for _, send_id in wanted})
    look_back = max(settings.repeat_within, settings.burst_within)
    since = min(events[index].at for index, _ in wanted) - look_back
    history: dict[int, list[Earlier]] = {}
    for row in signals_since(
        session, {contact_of[index] for index, _ in wanted}, sorted(CLASSIFIED), since
    ):
        send_id = row.properties.get("send_id")
        if isinstance(send_id, int):
            history.setdefault(send_id, []).append(
                Earlier(row.event_id, row.type, row.at, _url(row.properties), row.traffic)
            )
    in_batch: dict[str, int] = {}
    for index, send_id in sorted(wanted, key=lambda pair: events[pair[0]].at):
        event = events[index]
        earlier = history.setdefault(send_id, [])
        url = _url(event.properties)
        verdict = classify(
            event.type, event.at, url, event.hit, sent.get(send_id), earlier, settings
        )
        if event.type == EventType.EMAIL_CLICKED and verdict.traffic == Traffic.MACHINE:
            for partner in burst_partners(event.at, url, earlier, settings):
                if partner.traffic == Traffic.MACHINE:
                    continue
                earlier[earlier.index(partner)] = Earlier(
                    partner.event_id, partner.type, partner.at, partner.url, Traffic.MACHINE
                )
                if partner.event_id in in_batch:
                    judgement.verdicts[in_batch[partner.event_id]] = Verdict(
                        Traffic.MACHINE, BURST_REASON
                    )
                else:
                    judgement.bursts.append((index, partner.event_id))
        judgement.verdicts[index] = verdict
        in_batch[event.id] = index
        earlier.append(Earlier(event.id, event.type, event.at, url, verdict.traffic))
    return judgement


def _url(properties: Mapping[str, Any]) -> str | None:
    value = properties.get("url")
    return value if isinstance(value, str) else None
