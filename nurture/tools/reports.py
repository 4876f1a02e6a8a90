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
  opens, unique clicks); rates are over sent; per email and per workflow.
  `opened` and `clicked` (and their rates) are a person's signals only; the
  sends a machine opened or clicked (a mail gateway, an image proxy: see
  `nurture.lifecycle.traffic`) and those opened or clicked again (repeat) are
  counted apart, under `machine` and `repeat`, once per send too;
- **calibration**: decided handoffs by score at handoff (the snapshot) in
  buckets around the handoff threshold, with their acceptance rate;
- **experiments**: variant tests, splits and holdouts (`nurture.tools.experiments`).

Durations are seconds; rates are fractions (0–1) or None when there is no
denominator. The HTML rendering lives in `nurture.tools.report_html`.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.definitions.base import parse_duration
from nurture.definitions.loader import Project
from nurture.errors import NurtureError
from nurture.events import EventType, Traffic
from nurture.store import reports as store
from nurture.tools.experiments import experiments_report

EMAIL_EVENTS: dict[str, str] = {
    EventType.EMAIL_DELIVERED: "delivered",
    EventType.EMAIL_OPENED: "opened",
    EventType.EMAIL_CLICKED: "clicked",
    EventType.EMAIL_UNSUBSCRIBED: "unsubscribed",
    EventType.EMAIL_BOUNCED: "bounced",
    EventType.EMAIL_COMPLAINED: "complained",
}
EMAIL_COUNTS = ("sent", "delivered", "opened", "clicked", "unsubscribed", "bounced", "complained")
#: The counts a machine fakes: kept apart by traffic class (`Traffic`).
SIGNALS = ("opened", "clicked")
#: The classes counted apart from a person's signals.
APART = (Traffic.MACHINE.value, Traffic.REPEAT.value)


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
    found = store.contacts_per_stage(session, stages[0])
    return {s: found.get(s, 0) for s in stages}


def stage_entries(
    session: Session, stages: Sequence[str], since: datetime, until: datetime
) -> dict[str, int]:
    """Distinct contacts who entered each stage during [since, until)."""
    found = store.stage_entries(session, since, until)
    return {s: found.get(s, 0) for s in stages}


# --- conversion ---------------------------------------------------------------------------


def cohort_conversion(
    session: Session, stages: Sequence[str], since: datetime, until: datetime
) -> list[dict[str, Any]]:
    """For each consecutive pair: the cohort entering `from` in the period, how many went on."""
    rows = []
    for index in range(len(stages) - 1):
        total, converted = store.cohort(session, stages[index], stages[index + 1 :], since, until)
        rows.append(
            {
                "from": stages[index],
                "to": stages[index + 1],
                "entered": total,
                "converted": converted,
                "rate": _rate(converted, total),
            }
        )
    return rows


# --- time in stage ------------------------------------------------------------------------


def time_in_stage(
    session: Session, stages: Sequence[str], since: datetime, until: datetime, now: datetime
) -> list[dict[str, Any]]:
    """Stays that began in the period: until the next move, or until now if still current."""
    durations: dict[str, list[float]] = defaultdict(list)
    still: dict[str, int] = defaultdict(int)
    for stage, start, left_at in store.stays(session, since, until):
        if left_at is None:
            still[stage] += 1
        durations[stage].append(max(0.0, ((left_at or now) - start).total_seconds()))
    return [
        {"stage": s, "stays": len(durations[s]), "open": still[s], **_stats(durations[s])}
        for s in stages
    ]


# --- handoffs -----------------------------------------------------------------------------


def handoff_outcomes(session: Session, since: datetime, until: datetime) -> dict[str, Any]:
    """Handoffs opened in the period: by status, acceptance rate, time to accept."""
    counts = store.handoffs_by_status(session, since, until)
    n_accepted, n_rejected = counts.get("accepted", 0), counts.get("rejected", 0)
    return {
        "created": sum(counts.values()),
        "open": counts.get("open", 0),
        "accepted": n_accepted,
        "rejected": n_rejected,
        "acceptance_rate": _rate(n_accepted, n_accepted + n_rejected),
        "time_to_accept": _stats(store.acceptance_waits(session, since, until)),
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
    tally: dict[str, dict[str, int]] = {label: {"accepted": 0, "rejected": 0} for label in labels}
    scores: dict[str, list[float]] = {label: [] for label in labels}
    unknown = {"accepted": 0, "rejected": 0}
    for status, score in store.decided_scores(session, since, until):
        if score is None:
            unknown[status] += 1
            continue
        band = labels[sum(1 for edge in edges if score >= edge)]
        tally[band][status] += 1
        scores[band].append(score)
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
    rows: dict[tuple[str | None, str], dict[str, Any]] = {}

    def row(workflow: str | None, template: str) -> dict[str, Any]:
        return rows.setdefault(
            (workflow, template),
            {"workflow": workflow, "template": template, **_empty_counts()},
        )

    def add(entry: dict[str, Any], kind: str, traffic: str, number: int) -> None:
        name = EMAIL_EVENTS[kind]
        if name in SIGNALS and traffic in APART:
            entry[traffic][name] += number
        else:
            entry[name] += number

    sent, reacted = store.sent_per_email(session, since, until, list(EMAIL_EVENTS))
    for workflow, template, number in sent:
        row(workflow, template)["sent"] = number
    for workflow, template, kind, traffic, number in reacted:
        add(row(workflow, template), kind, traffic, number)
    # Events naming their email by template only: once per contact and email.
    for workflow, template, kind, traffic, number in store.events_by_template(
        session, since, until, list(EMAIL_EVENTS)
    ):
        if (workflow, template) in rows:  # emails sent in the period only
            add(row(workflow, template), kind, traffic, number)
    result = sorted(rows.values(), key=lambda r: (r["workflow"] or "", r["template"]))
    return [_with_rates(r) for r in result]


def _empty_counts() -> dict[str, Any]:
    return {
        **dict.fromkeys(EMAIL_COUNTS, 0),
        **{traffic: dict.fromkeys(SIGNALS, 0) for traffic in APART},
    }


def _with_rates(row: dict[str, Any]) -> dict[str, Any]:
    rates = {k: _rate(int(row[k]), int(row["sent"])) for k in EMAIL_COUNTS if k != "sent"}
    return {**row, "rates": rates}


def workflow_stats(emails: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-email rows summed by workflow (a send belongs to one email, so sums stay unique)."""
    totals: dict[str, dict[str, Any]] = {}
    for email in emails:
        name = email["workflow"] or "(none)"
        total = totals.setdefault(name, {"workflow": name, "emails": 0, **_empty_counts()})
        total["emails"] += 1
        for k in EMAIL_COUNTS:
            total[k] += email[k]
        for traffic in APART:
            for k in SIGNALS:
                total[traffic][k] += email[traffic][k]
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
        "experiments": experiments_report(session, project, since, until),
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
