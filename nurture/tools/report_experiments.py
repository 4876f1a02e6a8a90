"""The report's experiments as HTML: a table per test and a chart of its differences.

Each variant (or split arm, or the treated group of a holdout) after the first is
drawn as its difference from the first, a dot on its 95 % confidence interval
around a zero line: an interval clear of zero is a real difference, one across it
is not (yet). Inline SVG with presentation attributes only, like the rest of
`nurture.tools.report_html`, which places this section in the page.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

GREEN = "#10b981"
RED = "#ef4444"
GREY = "#9aa5b1"
INK = "#1f2933"
MUTED = "#616e7c"

METRIC_LABELS = {
    "human_opens": "opened (people)",
    "human_clicks": "clicked (people)",
    "unsubscribes": "unsubscribed",
    "reached_stage": "reached the stage",
}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f} %"


def _points(difference: dict[str, float] | None) -> str:
    if difference is None:
        return "–"
    d, low, high = (difference[k] * 100 for k in ("difference", "low", "high"))
    p = difference["p_value"]
    shown = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    return f"{d:+.1f} pts [{low:+.1f}, {high:+.1f}] · {shown}"


def interval_chart(
    rows: Sequence[tuple[str, dict[str, float]]], title: str, lower_is_better: bool = False
) -> str:
    """Differences with their intervals on one axis around zero (percentage points)."""
    if not rows:
        return ""
    width, label_w, row_h = 760, 170, 30
    chart_w = width - label_w - 40
    reach = max(max(abs(d["low"]), abs(d["high"])) for _, d in rows) or 0.01
    height = row_h * len(rows) + 30

    def x(value: float) -> float:
        return label_w + chart_w / 2 + value / reach * chart_w / 2

    parts = [
        f'<line x1="{x(0):.1f}" y1="4" x2="{x(0):.1f}" y2="{height - 22}" stroke="{GREY}"/>',
        f'<text x="{x(0):.1f}" y="{height - 6}" text-anchor="middle" font-size="11" '
        f'fill="{MUTED}">0 (no difference)</text>',
    ]
    for i, (label, d) in enumerate(rows):
        y = 8 + i * row_h + row_h / 2
        better = (d["difference"] < 0) if lower_is_better else (d["difference"] > 0)
        clear = d["low"] > 0 or d["high"] < 0
        color = (GREEN if better else RED) if clear else GREY
        parts += [
            f'<text x="{label_w - 10}" y="{y + 4:.1f}" text-anchor="end" font-size="13" '
            f'fill="{INK}">{escape(label)}</text>',
            f'<line x1="{x(d["low"]):.1f}" y1="{y:.1f}" x2="{x(d["high"]):.1f}" y2="{y:.1f}" '
            f'stroke="{color}" stroke-width="3"/>',
            f'<circle cx="{x(d["difference"]):.1f}" cy="{y:.1f}" r="5" fill="{color}"/>',
        ]
    return (
        f'<svg role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{"".join(parts)}</svg>'
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    header = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f'<div class="wide"><table><thead><tr>{header}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def experiments_html(experiments: Sequence[dict[str, Any]]) -> str:
    """The "Experiments" section, or nothing when the project runs none."""
    if not experiments:
        return ""
    parts = [
        "<h2>Experiments</h2>",
        '<p class="note">Differences from the first variant or arm, in percentage points, '
        "with their 95 % confidence interval; p: two-sided two-proportion z-test. A winner "
        "is decided at 95 % once its sample and wait are in, and kept.</p>",
    ]
    for x in experiments:
        if x["kind"] == "variants":
            parts.append(_variants(x))
        else:
            parts.append(_groups(x))
    return "".join(parts)


def _variants(x: dict[str, Any]) -> str:
    metric = x["metric"]
    where = escape(f"{x['workflow']}/{x['step']}")
    won = x["winner"]
    verdict = (
        f"winner <b>{escape(won['variant'])}</b> (decided {escape(won['decided_at'][:16])})"
        if won
        else "no winner yet"
    )
    rows = x["variants"]
    metrics = [k for k in METRIC_LABELS if rows and k in rows[0]]
    table = _table(
        ["variant", "template", "sent", *(METRIC_LABELS[k] for k in metrics), "difference"],
        [
            [
                escape(v["variant"]),
                escape(v["template"]),
                str(v["sent"]),
                *(f"{v[k]} · {_pct(v['rates'][k])}" for k in metrics),
                escape(_points(v["difference"])) if v["difference"] else "",
            ]
            for v in rows
        ],
    )
    chart = interval_chart(
        [
            (f"{v['variant']} − {rows[0]['variant']}", v["difference"])
            for v in rows[1:]
            if v["difference"]
        ],
        f"{x['step']}: {METRIC_LABELS[metric]}, difference from {rows[0]['variant']}"
        if rows
        else "",
        x["lower_is_better"],
    )
    return (
        f"<h3>A/B test {where}</h3>"
        f'<p class="note">Compared on {escape(METRIC_LABELS[metric])} '
        f"({'lower' if x['lower_is_better'] else 'higher'} is better); {verdict}.</p>"
        f"{table}{chart}"
    )


def _groups(x: dict[str, Any]) -> str:
    split = x["kind"] == "split"
    rows = x["arms"] if split else x["groups"]
    where = escape(f"{x['workflow']}/{x['step']}" if split else x["workflow"])
    if split:
        title = f"<h3>Split {where}</h3>"
        note = "Contacts who moved up a stage after drawing their arm."
        pairs = [
            (f"{r['arm']} − {rows[0]['arm']}", r["difference"]) for r in rows[1:] if r["difference"]
        ]
    else:
        title = f"<h3>Holdout {where} ({x['share']:.0%})</h3>"
        note = (
            "The workflow's lift: contacts emailed (treated) against those held out, "
            f"on moving up a stage: {_points(x['lift'])}."
        )
        pairs = [("treated − holdout", x["lift"])] if x["lift"] else []
    table = _table(
        ["arm" if split else "group", "contacts", "moved up", "difference"],
        [
            [
                escape(r["arm"]),
                str(r["contacts"]),
                f"{r['converted']} · {_pct(r['rate'])}",
                escape(_points(r["difference"])) if r.get("difference") else "",
            ]
            for r in rows
        ],
    )
    return (
        f'{title}<p class="note">{escape(note)}</p>{table}'
        f"{interval_chart(pairs, f'{where}: difference in moving up a stage')}"
    )
