"""Printing simulation and demo results for people: a timeline and a funnel."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table

import nurture.readable as readable
from nurture.records import Record
from nurture.store.statuses import EnrollmentStatus
from nurture.tools.explain import signal_text
from nurture.tools.simulate import SimulationResult

_SHOWN = {
    "enroll": "enters",
    "send": "email",
    "skip": "skips",
    "event": "event",
    "exit": "leaves",
    "score": "score",
    "stage": "stage",
    "handoff": "handoff",
    "fail": "FAILED",
    "retry": "retry",
    "reject": "rejected",
    "holdout": "held out",
    "winner": "WINNER",
    "segment": "segment",
}


def timeline_line(record: Record) -> str:
    what = _SHOWN.get(record.kind, record.kind)
    where = "/".join(x for x in (record.workflow, record.step) if x)
    details = record.details
    if record.kind == "send":
        extra = f"« {details.get('subject', '')} »"
        if details.get("variant"):
            extra = f"[variant {details['variant']}] {extra}"
    elif record.kind == "holdout":
        extra = f"in the {details.get('share', 0):.0%} holdout: its emails are not sent"
    elif record.kind == "split":
        extra = f"→ {details.get('arm')}"
    elif record.kind == "winner":
        extra = f"variant {details.get('variant')} wins on {details.get('metric')}"
    elif record.kind == "event":
        extra = str(details.get("event", ""))
        if details.get("traffic"):  # a machine's or a repeat: recorded, not scored
            why = f": {details['traffic_reason']}" if details.get("traffic_reason") else ""
            extra += f" — {details['traffic']}{why} (not scored)"
    elif record.kind in ("exit", "skip", "fail", "reject"):
        extra = str(details.get("reason", ""))
    elif record.kind == "stage":
        extra = f"{details.get('from')} → {details.get('to')}"
    elif record.kind == "score":
        extra = score_text(details)
    elif record.kind == "segment":
        change = "entered" if "entered" in details else "left"
        extra = f"{change} {details.get(change)} ({details.get('why', '')})"
    else:
        extra = ", ".join(f"{k}={v}" for k, v in details.items())
    return (
        f"{record.at:%Y-%m-%d %H:%M}  {record.contact:<40} {what:<8} {where:<36} {extra}".rstrip()
    )


def score_text(details: Mapping[str, Any]) -> str:
    """`+10 → 35  email.clicked (rule:1:email.clicked)`: the points, the score after, and why."""
    points, score = float(details.get("points", 0)), float(details.get("score", 0))
    cause, rule = details.get("cause"), details.get("rule")
    why = {"decay": "decay", "fit": "fit (profile)"}.get(str(cause), str(rule))
    if details.get("event"):
        taken = " taken back (a machine's)" if cause == "revoked" else ""
        why = f"{details['event']}{taken} ({rule})"
    return f"{round(points, 1):+g} → {round(score, 1):g}  {why}"


def print_timeline(console: Console, records: Sequence[Record], limit: int | None = None) -> None:
    shown = [r for r in records if r.kind not in ("wait", "wait_for", "timeout", "resume")]
    for record in shown[:limit] if limit else shown:
        console.print(timeline_line(record), markup=False, highlight=False, soft_wrap=True)
    if limit and len(shown) > limit:
        console.print(f"… {len(shown) - limit} more")


def most_varied(records: Sequence[Record], count: int) -> list[str]:
    """The few contacts whose journeys show the most kinds of step."""
    kinds: dict[str, set[str]] = {}
    for record in records:
        kinds.setdefault(record.contact, set()).add(record.kind)
    return sorted(kinds, key=lambda contact: -len(kinds[contact]))[:count]


def print_journeys(console: Console, records: Sequence[Record], count: int = 3) -> None:
    """The full story of the few contacts whose journeys show the most kinds of step."""
    for contact in most_varied(records, count):
        console.print(f"\n[bold]Journey of {contact}[/bold]")
        print_timeline(console, [r for r in records if r.contact == contact])


def print_summary(console: Console, result: SimulationResult) -> None:
    days = (result.end - result.start).days
    console.print(f"\n[bold]Funnel after {days} days[/bold]")
    funnel = Table(box=None, pad_edge=False)
    funnel.add_column("stage")
    funnel.add_column("contacts", justify="right")
    for stage, number in result.funnel.items():
        funnel.add_row(stage, str(number))
    console.print(funnel)
    console.print("\n[bold]Workflows[/bold]")
    table = Table(box=None, pad_edge=False)
    for column in ("workflow", "enrolled", "in progress", "finished / left (reason)"):
        table.add_column(column)
    for name, counts in sorted(result.workflows.items()):
        live = counts.get(EnrollmentStatus.ACTIVE, 0) + counts.get(EnrollmentStatus.WAITING, 0)
        ended = ", ".join(
            f"{label.split(':', 1)[1]} {n}" for label, n in sorted(counts.items()) if ":" in label
        )
        table.add_row(name, str(counts["enrolled"]), str(live), ended)
    console.print(table)
    if result.handoffs:
        owners = ", ".join(f"{owner} {n}" for owner, n in sorted(result.handoffs.items()))
        console.print(f"\n[bold]Handed to sales: {sum(result.handoffs.values())}[/bold] ({owners})")
    signals = {traffic: sum(kinds.values()) for traffic, kinds in result.signals.items()}
    if any(signals.values()):
        machine: Mapping[str, int] = result.signals.get("machine", {})
        console.print(
            f"\n[bold]Opens and clicks[/bold]: {signals.get('human', 0)} by people, "
            f"{signals.get('machine', 0)} by machines ({machine.get('email.opened', 0)} opens, "
            f"{machine.get('email.clicked', 0)} clicks: gateways and image proxies, not scored), "
            f"{signals.get('repeat', 0)} repeats (not scored again)"
        )
    print_experiments(console, result.records)
    if result.segments:
        sizes = ", ".join(f"{name} {number}" for name, number in result.segments.items())
        console.print(f"\n[bold]Segments at the end[/bold]: {sizes}")
    console.print(f"\n[bold]Emails sent: {sum(result.sent_by_template.values())}[/bold]")
    emails = Table(box=None, pad_edge=False)
    emails.add_column("template")
    emails.add_column("sent", justify="right")
    for template, number in sorted(result.sent_by_template.items()):
        emails.add_row(template, str(number))
    console.print(emails)


def print_experiments(console: Console, records: Sequence[Record]) -> None:
    """Who drew what in the run: sends per variant, arms of splits, holdouts, winners."""
    drawn: dict[tuple[str, str], Counter[str]] = {}
    held: Counter[str] = Counter()
    for record in records:
        where = (record.workflow or "", record.step or "")
        if record.kind == "send" and record.details.get("variant"):
            drawn.setdefault(where, Counter())[f"variant {record.details['variant']}"] += 1
        elif record.kind == "split":
            drawn.setdefault(where, Counter())[f"→ {record.details.get('arm')}"] += 1
        elif record.kind == "holdout":
            held[record.workflow or ""] += 1
    winners = [r for r in records if r.kind == "winner"]
    if not (drawn or held or winners):
        return
    console.print("\n[bold]Experiments[/bold]")
    for (workflow, step), counts in sorted(drawn.items()):
        shares = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
        console.print(f"{workflow}/{step}: {shares}", markup=False)
    for workflow, n in sorted(held.items()):
        console.print(f"{workflow}: {n} contacts held out (no email)", markup=False)
    for r in winners:
        console.print(
            f"{r.at:%Y-%m-%d %H:%M} {r.workflow}/{r.step}: variant {r.details.get('variant')} "
            f"won on {r.details.get('metric')}",
            markup=False,
        )


def print_explanation(
    console: Console, data: dict[str, Any], zone: str = "UTC", now: datetime | None = None
) -> None:
    """`nurture explain`, for people: scores rounded, times local to `zone`."""
    contact, score = data["contact"], data["score"]

    def when(value: str | None) -> str:
        return readable.local_time(value, zone, readable.CLI_LANGUAGE, now)

    name = f"{contact['name']} " if contact["name"] else ""
    console.print(f"[bold]{name}<{contact['email']}>[/bold] {contact['company'] or ''}".rstrip())
    console.print(
        f"stage [bold]{contact['stage']}[/bold] · score "
        f"[bold]{readable.score_breakdown(score['now'], score['fit'])}[/bold]"
        f" · {score['temperature']}" + (f" · owner {contact['owner']}" if contact["owner"] else "")
    )
    consent = contact.get("consent") or "unknown"
    basis = ", ".join(x for x in (contact.get("consent_basis"), contact.get("consent_source")) if x)
    console.print(f"consent {consent}" + (f" ({basis})" if basis else ""), markup=False)
    why = data["not_emailed_because"]
    console.print(
        f"[yellow]not being emailed: {why}[/yellow]" if why else "[green]being nurtured[/green]"
    )
    if data["stage_history"]:
        console.print("\n[bold]Stages[/bold]")
        for move in data["stage_history"]:
            console.print(
                f"  {when(move['at'])}  {move['from'] or '—'} → {move['to']}  ({move['cause']})"
            )
    console.print("\n[bold]Workflows[/bold]")
    if not data["enrollments"]:
        console.print("  none")
    for enrollment in data["enrollments"]:
        state = enrollment["status"]
        if enrollment["exit_reason"]:
            state += f" ({enrollment['exit_reason']})"
        console.print(f"  {enrollment['workflow']}: {state}, step {enrollment['step'] or '—'}")
        if enrollment.get("next"):
            console.print(f"    next: {enrollment['next']}", markup=False)
    if score["ledger"]:
        console.print("\n[bold]Score ledger[/bold]")
        table = Table(box=None, pad_edge=False)
        for column in ("at", "kind", "rule", "points", "score", ""):
            table.add_column(column, justify="right" if column in ("points", "score") else "left")
        for line in score["ledger"]:
            table.add_row(
                when(line["at"]),
                line["kind"],
                line["rule"],
                readable.points(line["points"]),
                readable.score(line["score_after"]),
                line.get("note") or "",
            )
        console.print(table)
    if data.get("segments"):
        console.print("\n[bold]Segments[/bold]")
        for item in data["segments"]:
            state = (
                f"in since {when(item['entered_at'])}"
                if item["member"]
                else "not in" + (f" (left {when(item['left_at'])})" if item["left_at"] else "")
            )
            console.print(f"  {item['segment']}: {state} — {item['why']}", markup=False)
            for event in item["events"] if item["member"] else []:
                url = f" {event['url']}" if event["url"] else ""
                console.print(f"    {when(event['at'])}  {event['type']}{url}", markup=False)
    if data.get("signals"):
        shown, total = len(data["signals"]), data.get("signals_total", len(data["signals"]))
        latest = f" (the latest {shown} of {total})" if total > shown else ""
        console.print(f"\n[bold]Opens and clicks[/bold]{latest}")
        for signal in data["signals"]:
            console.print(f"  {when(signal['at'])}  {signal_text(signal)}", markup=False)
    if data["emails"]:
        console.print("\n[bold]Emails[/bold]")
        for email in data["emails"]:
            extra = f" — {email['error']}" if email["error"] else ""
            if email.get("next_attempt_at"):
                extra += f" (next attempt {when(email['next_attempt_at'])})"
            console.print(
                f"  {when(email['at'])}  {email['status']:<8} {email['template']}"
                + (f" [variant {email['variant']}]" if email.get("variant") else "")
                + f"  {email['subject'] or ''}{extra}",
                markup=False,
            )
    console.print(f"\ntimes in {zone}", style="dim")
