"""The report as HTML: one self-contained page, charts as inline SVG, no script.

`render_html(report)` is the file `nurture report --html` writes (CSS inline,
nothing fetched); `render_body(report)` is the same content for the web app,
which serves `REPORT_CSS` as a stylesheet (its CSP forbids inline styles).
SVG uses presentation attributes only, never `style=`, for the same reason.
Every value from the database goes through `html.escape`.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

import nurture.readable as readable
from nurture.tools.report_experiments import experiments_html

REPORT_CSS = """\
.report { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1f2933; max-width: 1100px; margin: 0 auto; padding: 24px; }
.report h1 { font-size: 24px; margin: 0 0 4px; }
.report h2 { font-size: 18px; margin: 32px 0 8px; border-bottom: 1px solid #e4e7eb;
  padding-bottom: 4px; }
.report .period { color: #616e7c; margin: 0 0 16px; }
.report .cards { display: flex; flex-wrap: wrap; gap: 12px; }
.report .card { border: 1px solid #e4e7eb; border-radius: 8px; padding: 10px 16px;
  min-width: 150px; background: #f8fafc; }
.report .card b { display: block; font-size: 22px; }
.report .card span { color: #616e7c; font-size: 12px; }
.report table { border-collapse: collapse; width: 100%; margin: 8px 0; }
.report th, .report td { text-align: right; padding: 4px 8px; border-bottom: 1px solid #eef0f2;
  white-space: nowrap; }
.report th:first-child, .report td:first-child { text-align: left; }
.report td.name { text-align: left; }
.report th { font-size: 12px; color: #52606d; font-weight: 600; }
.report .rate { display: inline-flex; align-items: center; gap: 6px; }
.report .note { color: #616e7c; font-size: 12px; }
.report svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.report .wide { overflow-x: auto; }
"""

BLUE = "#3b82f6"
GREEN = "#10b981"
GREY = "#cbd2d9"
INK = "#1f2933"
MUTED = "#616e7c"


def pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def duration(seconds: float | None) -> str:
    """2 d 4 h, 5 h 10 min, 12 min."""
    if seconds is None:
        return "–"
    minutes = round(seconds) // 60
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def _text(x: float, y: float, content: str, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="13" '
        f'fill="{INK}">{escape(content)}</text>'
    )


def bar_chart(
    rows: Sequence[tuple[str, float, str, str | None]],
    *,
    title: str,
    color: str = BLUE,
    label_width: int = 150,
    width: int = 760,
) -> str:
    """Horizontal bars: (label, value, value text, note between this bar and the next)."""
    bar_h, gap, note_h = 26, 8, 18
    chart_w = width - label_width - 140
    top = 8
    most = max((v for _, v, _, _ in rows), default=0) or 1
    parts: list[str] = []
    y = top
    for label, value, shown, note in rows:
        length = max(2.0, chart_w * value / most) if value > 0 else 0.0
        parts.append(_text(label_width - 10, y + 18, label, "end"))
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{chart_w}" height="{bar_h}" '
            f'fill="#f1f5f9" rx="3"/>'
        )
        if length:
            parts.append(
                f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_h}" '
                f'fill="{color}" rx="3"/>'
            )
        parts.append(_text(label_width + chart_w + 10, y + 18, shown))
        y += bar_h + gap
        if note:
            parts.append(
                f'<text x="{label_width + 6}" y="{y + 11}" font-size="12" fill="{MUTED}">'
                f"{escape(note)}</text>"
            )
            y += note_h
    height = y + top
    return (
        f'<svg role="img" aria-label="{escape(title)}" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f"<title>{escape(title)}</title>{''.join(parts)}</svg>"
    )


def rate_bar(value: float | None, color: str = GREEN) -> str:
    """A rate as a small inline bar and its percentage."""
    width = 60
    filled = 0.0 if value is None else max(0.0, min(1.0, value)) * width
    return (
        f'<span class="rate"><svg width="{width}" height="10" '
        f'viewBox="0 0 {width} 10" aria-hidden="true"><rect width="{width}" height="10" '
        f'fill="#eef0f2" rx="2"/><rect width="{filled:.1f}" height="10" fill="{color}" rx="2"/>'
        f"</svg>{pct(value)}</span>"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Cells are HTML already (escaped by the caller)."""
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(head)}" class="note">Nothing in this period.</td></tr>'
    return f'<div class="wide"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{escape(value)}</b><span>{escape(label)}</span></div>'


def render_body(report: dict[str, Any], timezone: str = "UTC") -> str:
    """The report's content; times in the reader's `timezone`."""
    period = report["period"]
    stages = report["stages"]
    conversion = {row["from"]: row for row in report["conversion"]}
    handoffs = report["handoffs"]

    def when(value: str) -> str:
        return readable.local_time(value, timezone, readable.CLI_LANGUAGE, year=True)

    parts = [
        '<div class="report">',
        "<h1>Nurture report</h1>",
        f'<p class="period">From {escape(when(period["since"]))} to '
        f"{escape(when(period['until']))} · generated {escape(when(report['generated_at']))}"
        f" · times in {escape(timezone)}</p>",
        '<div class="cards">',
        _card(str(sum(s["contacts"] for s in stages)), "contacts"),
        _card(str(sum(e["sent"] for e in report["emails"])), "emails sent"),
        _card(str(handoffs["created"]), "handoffs opened"),
        _card(pct(handoffs["acceptance_rate"]), "handoffs accepted (of decided)"),
        _card(duration(handoffs["time_to_accept"]["median_seconds"]), "median time to accept"),
        "</div>",
        "<h2>Funnel</h2>",
        '<p class="note">Each bar: the contacts who entered that stage during the period '
        "(imported or moved straight into a stage counts too). Under it: how many of "
        "them later reached the next stage (or beyond).</p>",
    ]
    funnel = []
    for stage in stages:
        step = conversion.get(stage["stage"])
        note = None
        if step is not None and step["entered"]:
            # The caption says what its figure counts, right beside it (#17): a "0.0 %"
            # between two full bars otherwise reads as a contradiction.
            note = (
                f"↓ {step['converted']} of the {step['entered']} later reached "
                f"{step['to']} ({pct(step['rate'])})"
            )
        entered = stage["entered"]
        funnel.append((stage["stage"], float(entered), f"{entered} entered", note))
    parts.append(bar_chart(funnel, title="Funnel: contacts entering each stage"))
    parts.append(
        _table(
            ["stage", "contacts now", "entered in period", "went on", "conversion"],
            [
                [
                    escape(s["stage"]),
                    str(s["contacts"]),
                    str(s["entered"]),
                    str(conversion[s["stage"]]["converted"]) if s["stage"] in conversion else "",
                    rate_bar(conversion[s["stage"]]["rate"], BLUE)
                    if s["stage"] in conversion
                    else "",
                ]
                for s in stages
            ],
        )
    )
    times = report["time_in_stage"]
    parts += [
        "<h2>Time in stage</h2>",
        '<p class="note">Stays that began in the period, median (bars) and mean; a stay '
        "still current counts up to now (“open”).</p>",
        bar_chart(
            [
                (
                    t["stage"],
                    float(t["median_seconds"] or 0) / 86400,
                    f"{duration(t['median_seconds'])} median",
                    None,
                )
                for t in times
            ],
            title="Median time in each stage",
            color="#8b5cf6",
        ),
        _table(
            ["stage", "stays", "still open", "mean", "median"],
            [
                [
                    escape(t["stage"]),
                    str(t["stays"]),
                    str(t["open"]),
                    duration(t["mean_seconds"]),
                    duration(t["median_seconds"]),
                ]
                for t in times
            ],
        ),
        "<h2>Sales handoffs</h2>",
        _table(
            ["opened", "accepted", "rejected", "open", "acceptance", "mean to accept", "median"],
            [
                [
                    str(handoffs["created"]),
                    str(handoffs["accepted"]),
                    str(handoffs["rejected"]),
                    str(handoffs["open"]),
                    rate_bar(handoffs["acceptance_rate"]),
                    duration(handoffs["time_to_accept"]["mean_seconds"]),
                    duration(handoffs["time_to_accept"]["median_seconds"]),
                ]
            ],
        ),
        "<h2>Scoring calibration</h2>",
        f'<p class="note">Decided handoffs by score at handoff (threshold '
        f"{report['calibration']['threshold']:g}): a good score accepts more as it rises.</p>",
        _table(
            ["score at handoff", "accepted", "rejected", "acceptance", "mean score"],
            [
                [
                    escape(b["band"]),
                    str(b["accepted"]),
                    str(b["rejected"]),
                    rate_bar(b["acceptance_rate"]),
                    "–" if b["mean_score"] is None else readable.score(b["mean_score"]),
                ]
                for b in report["calibration"]["bands"]
            ],
        ),
        "<h2>Workflows</h2>",
        _email_table(report["workflows"], "workflow", lambda r: escape(r["workflow"])),
        "<h2>Emails</h2>",
        '<p class="note">Emails sent in the period; each reaction counted once per email '
        "(unique opens and clicks), rates over sent. Opened and clicked are people's; "
        "<b>machine</b>: emails a mail gateway, link scanner or image proxy opened or "
        "clicked (they neither score nor end a wait); <b>repeat</b>: emails a person opened "
        "or clicked again.</p>",
        _email_table(
            report["emails"],
            "email",
            lambda r: (
                f"{escape(r['template'])}"
                f'<br><span class="note">{escape(r["workflow"] or "")}</span>'
            ),
        ),
        experiments_html(report.get("experiments", [])),
        "</div>",
    ]
    return "".join(parts)


def _email_table(rows: Sequence[dict[str, Any]], first: str, name: Any) -> str:
    def cells(r: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> list[str]:
        return [f"{r[k]} {rate_bar(r['rates'][k], color)}" for k, color in pairs]

    return _table(
        [
            first,
            "sent",
            "delivered",
            "opened",
            "clicked",
            "machine (opened / clicked)",
            "repeat (opened / clicked)",
            "unsubscribed",
            "bounced",
        ],
        [
            [
                name(r),
                str(r["sent"]),
                *cells(r, (("delivered", GREY), ("opened", BLUE), ("clicked", GREEN))),
                signals_apart(r["machine"]),
                signals_apart(r["repeat"]),
                *cells(r, (("unsubscribed", "#f59e0b"), ("bounced", "#ef4444"))),
            ]
            for r in rows
        ],
    )


def signals_apart(counts: dict[str, int]) -> str:
    """A machine's or the repeated opens and clicks of an email row: ``3 / 5``."""
    return f"{counts['opened']} / {counts['clicked']}"


def render_html(report: dict[str, Any], timezone: str = "UTC") -> str:
    """The whole page: one file, nothing fetched."""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Nurture report · {escape(report['period']['since'][:10])} – "
        f"{escape(report['period']['until'][:10])}</title>"
        f"<style>{REPORT_CSS}</style></head><body>{render_body(report, timezone)}</body></html>\n"
    )
