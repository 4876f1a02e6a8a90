"""The funnel report: `nurture report`, `--json`, `--html` and `/sales/reports`.

`build_report(session, project, since, until)` answers one JSON-ready dict;
each figure comes from one named query below (GROUP BY in the database, or
one pass over the rows of the period when a median is needed):

- **volume**: contacts now in each stage (NULL stage = the first one), and
  how many entered each stage during the period;
- **conversion** (cohort): of the contacts who entered stage S during the
  period, the share who later (up to now) reached S+1 or any stage above it;
- **time in stage**: each stay that began in the period lasts until the
  contact's next move; a stay still current counts up to now and is flagged
  (`open`);
- **handoffs** opened in the period: accepted / rejected / open, acceptance
  rate (of decided ones), time to accept;
- **emails**: sends sent in the period with their email events at any time,
  matched by `properties.send_id`, each kind counted once per send (unique
  opens, unique clicks); rates are over sent; per email and per workflow;
- **calibration**: decided handoffs by score at handoff (the snapshot) in
  buckets around the handoff threshold, with their acceptance rate.

Durations are seconds; rates are fractions (0–1) or None when there is no
denominator. The HTML rendering lives in `nurture.tools.report_html`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

import nurture.clock as clock
from nurture.definitions.base import parse_duration
from nurture.definitions.loader import Project
from nurture.errors import NurtureError
from nurture.store.models import Contact, Event, Handoff, Send, StageHistory

EMAIL_EVENTS: dict[str, str] = {
    "email.delivered": "delivered",
    "email.opened": "opened",
    "email.clicked": "clicked",
    "email.unsubscribed": "unsubscribed",
    "email.bounced": "bounced",
    "email.complained": "complained",
}
EMAIL_COUNTS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "complained")


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _stats(durations: Sequence[float]) -> dict[str, float | None]:
    if not durations:
        return {"mean_seconds": None, "median_seconds": None}
    return {
        "mean_seconds": statistics.fmean(durations),
        "median_seconds": float(statistics.median(durations)),
    }


# --- volume ------------------------------------------------------------------------------


def stage_volume(session: Session, stages: Sequence[str]) -> dict[str, int]:
    """Contacts now in each stage (erased ones included: they still count)."""
    stage = func.coalesce(Contact.stage, stages[0])
    query = select(stage, func.count()).group_by(stage)
    found = {name: int(n) for name, n in session.execute(query)}
    return {s: int(found.get(s, 0)) for s in stages}


def stage_entries(
    session: Session, stages: Sequence[str], since: datetime, until: datetime
) -> dict[str, int]:
    """Distinct contacts who entered each stage during [since, until)."""
    query = (
        select(StageHistory.to_stage, func.count(func.distinct(StageHistory.contact_id)))
        .where(StageHistory.at >= since, StageHistory.at < until)
        .group_by(StageHistory.to_stage)
    )
    found = {name: int(n) for name, n in session.execute(query)}
    return {s: int(found.get(s, 0)) for s in stages}


# --- conversion ---------------------------------------------------------------------------


def cohort_conversion(
    session: Session, stages: Sequence[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """For each consecutive pair: the cohort entering `from` in the period, how many went on."""
    rows = []
    for index in range(len(stages) - 1):
        here, above = stages[index], list(stages[index + 1 :])
        entered = aliased(StageHistory)
        later = aliased(StageHistory)
        cohort = and_(entered.to_stage == here, entered.at >= since, entered.at < until)
        went_on = exists().where(
            later.contact_id == entered.contact_id,
            later.to_stage.in_(above),
            later.at >= entered.at,
            later.id != entered.id,
        )
        total = session.scalar(select(func.count(func.distinct(entered.contact_id))).where(cohort))
        converted = session.scalar(
            select(func.count(func.distinct(entered.contact_id))).where(cohort, went_on)
        )
        rows.append(
            {
                "from": here,
                "to": stages[index + 1],
                "entered": int(total or 0),
                "converted": int(converted or 0),
                "rate": _rate(int(converted or 0), int(total or 0)),
            }
        )
    return rows


# --- time in stage ------------------------------------------------------------------------


def time_in_stage(
    session: Session, stages: Sequence[str], since: datetime, until: datetime, now: datetime
) -> list[dict[str, Any]]:
    """Stays that began in the period: until the next move, or until now if still current."""
    following = (
        func.lead(StageHistory.at)
        .over(partition_by=StageHistory.contact_id, order_by=(StageHistory.at, StageHistory.id))
        .label("left_at")
    )
    moves = select(
        StageHistory.to_stage.label("stage"), StageHistory.at.label("at"), following
    ).subquery()
    # Window functions bypass the column type: read the raw value back through it.
    query = select(moves.c.stage, moves.c.at, moves.c.left_at).where(
        moves.c.at >= since, moves.c.at < until
    )
    stays: dict[str, list[float]] = defaultdict(list)
    still: dict[str, int] = defaultdict(int)
    for stage, at, left_at in session.execute(query):
        start = _moment(at)
        end = _moment(left_at) if left_at is not None else now
        if left_at is None:
            still[stage] += 1
        stays[stage].append(max(0.0, (end - start).total_seconds()))
    return [
        {"stage": s, "stays": len(stays[s]), "open": still[s], **_stats(stays[s])} for s in stages
    ]


def _moment(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite hands window-function results back as text
        value = datetime.fromisoformat(value)
    return clock.as_utc(value)


# --- handoffs -----------------------------------------------------------------------------


def _score_at_handoff() -> Any:
    return Handoff.snapshot[("score", "total")].as_float()


def handoff_outcomes(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Handoffs opened in the period: by status, acceptance rate, time to accept."""
    in_period = and_(Handoff.created_at >= since, Handoff.created_at < until)
    by_status = select(Handoff.status, func.count()).where(in_period).group_by(Handoff.status)
    counts = {status: int(n) for status, n in session.execute(by_status)}
    accepted = session.execute(
        select(Handoff.created_at, Handoff.accepted_at).where(
            in_period, Handoff.status == "accepted", Handoff.accepted_at.is_not(None)
        )
    ).all()
    waits = [(a - c).total_seconds() for c, a in accepted if a is not None]
    n_accepted, n_rejected = int(counts.get("accepted", 0)), int(counts.get("rejected", 0))
    return {
        "created": int(sum(counts.values())),
        "open": int(counts.get("open", 0)),
        "accepted": n_accepted,
        "rejected": n_rejected,
        "acceptance_rate": _rate(n_accepted, n_accepted + n_rejected),
        "time_to_accept": _stats(waits),
    }


def score_calibration(
    session: Session, threshold: float, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """Decided handoffs by score at handoff: how often sales accepted each band."""
    edges = [threshold, threshold * 1.2, threshold * 1.5]
    labels = [
        f"< {edges[0]:g}",
        f"{edges[0]:g}–{edges[1]:g}",
        f"{edges[1]:g}–{edges[2]:g}",
        f"≥ {edges[2]:g}",
    ]
    query = select(Handoff.status, _score_at_handoff()).where(
        Handoff.created_at >= since,
        Handoff.created_at < until,
        Handoff.status.in_(("accepted", "rejected")),
    )
    tally: dict[str, dict[str, int]] = {label: {"accepted": 0, "rejected": 0} for label in labels}
    scores: dict[str, list[float]] = {label: [] for label in labels}
    unknown = {"accepted": 0, "rejected": 0}
    for status, score in session.execute(query):
        if score is None:
            unknown[status] += 1
            continue
        band = labels[sum(1 for edge in edges if score >= edge)]
        tally[band][status] += 1
        scores[band].append(float(score))
    rows = []
    for low, label in zip([None, *edges], labels, strict=True):
        entry = tally[label]
        accepted, rejected = entry["accepted"], entry["rejected"]
        rows.append(
            {
                "band": label,
                "min": low,
                "accepted": accepted,
                "rejected": rejected,
                "acceptance_rate": _rate(accepted, accepted + rejected),
                "mean_score": statistics.fmean(scores[label]) if scores[label] else None,
            }
        )
    if unknown["accepted"] or unknown["rejected"]:
        rows.append(
            {
                "band": "unknown",
                "min": None,
                **unknown,
                "acceptance_rate": _rate(unknown["accepted"], sum(unknown.values())),
                "mean_score": None,
            }
        )
    return rows


# --- emails -------------------------------------------------------------------------------


def email_stats(session: Session, since: datetime, until: datetime) -> list[dict[str, Any]]:
    """Per email (workflow, template): sends of the period and their events, once per send."""
    in_period = and_(Send.sent_at >= since, Send.sent_at < until)
    key = (Send.workflow, Send.template)
    rows: dict[tuple[str | None, str], dict[str, Any]] = {}

    def row(workflow: str | None, template: str) -> dict[str, Any]:
        return rows.setdefault(
            (workflow, template),
            {"workflow": workflow, "template": template, **dict.fromkeys(EMAIL_COUNTS, 0)},
        )

    sent = select(*key, func.count()).where(in_period, Send.status == "sent").group_by(*key)
    for workflow, template, number in session.execute(sent):
        row(workflow, template)["sent"] = int(number)
    send_id = Event.properties["send_id"].as_integer()
    reacted = (
        select(*key, Event.type, func.count(func.distinct(Send.id)))
        .join(Event, send_id == Send.id)
        .where(in_period, Send.status == "sent", Event.type.in_(list(EMAIL_EVENTS)))
        .group_by(*key, Event.type)
    )
    for workflow, template, kind, number in session.execute(reacted):
        row(workflow, template)[EMAIL_EVENTS[kind]] += int(number)
    # Events that name their email only by template (no send id: some ESP imports,
    # simulations): once per contact and email, those of the period.
    template = Event.properties["template"].as_string()
    workflow = Event.properties["workflow"].as_string()
    unmatched = (
        select(workflow, template, Event.type, func.count(func.distinct(Event.contact_id)))
        .where(
            send_id.is_(None),
            template.is_not(None),
            Event.at >= since,
            Event.at < until,
            Event.type.in_(list(EMAIL_EVENTS)),
        )
        .group_by(workflow, template, Event.type)
    )
    for workflow_name, template_name, kind, number in session.execute(unmatched):
        if (workflow_name, template_name) in rows:  # emails sent in the period only
            row(workflow_name, template_name)[EMAIL_EVENTS[kind]] += int(number)
    result = sorted(rows.values(), key=lambda r: (r["workflow"] or "", r["template"]))
    return [_with_rates(r) for r in result]


def _with_rates(row: dict[str, Any]) -> dict[str, Any]:
    rates = {k: _rate(int(row[k]), int(row["sent"])) for k in EMAIL_COUNTS if k != "sent"}
    return {**row, "rates": rates}


def workflow_stats(emails: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-email rows summed by workflow (a send belongs to one email, so sums stay unique)."""
    totals: dict[str, dict[str, Any]] = {}
    for email in emails:
        name = email["workflow"] or "(none)"
        total = totals.setdefault(
            name, {"workflow": name, "emails": 0, **dict.fromkeys(EMAIL_COUNTS, 0)}
        )
        total["emails"] += 1
        for k in EMAIL_COUNTS:
            total[k] += email[k]
    return [_with_rates(totals[name]) for name in sorted(totals)]


# --- the report ---------------------------------------------------------------------------


def build_report(
    session: Session,
    project: Project,
    since: datetime,
    until: datetime,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Every figure for [since, until), JSON-ready."""
    moment = now or clock.now()
    since, until = clock.as_utc(since), clock.as_utc(until)
    config = project.config
    stages = list(config.stages)
    handoff_stage = config.handoff.at if config.handoff else config.prospect_stage
    threshold = dict(config.scoring.thresholds).get(handoff_stage, 100.0)
    volume = stage_volume(session, stages)
    entries = stage_entries(session, stages, since, until)
    emails = email_stats(session, since, until)
    return {
        "period": {"since": since.isoformat(), "until": until.isoformat()},
        "generated_at": moment.isoformat(),
        "stages": [{"stage": s, "contacts": volume[s], "entered": entries[s]} for s in stages],
        "conversion": cohort_conversion(session, stages, since, until),
        "time_in_stage": time_in_stage(session, stages, since, until, moment),
        "handoffs": handoff_outcomes(session, since, until),
        "workflows": workflow_stats(emails),
        "emails": emails,
        "calibration": {
            "threshold": threshold,
            "bands": score_calibration(session, threshold, since, until),
        },
    }


def parse_moment(text: str, now: datetime, option: str) -> datetime:
    """`30d` (that long before now) or an ISO 8601 date or time (UTC unless it says)."""
    span = parse_duration(text)
    if span is not None:
        return now - span
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise NurtureError(
            f"{option}: expected a duration (30d, 12h, 2w) or an ISO 8601 time, not {text!r}"
        ) from None
    return clock.as_utc(moment)
