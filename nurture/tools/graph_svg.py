"""The SVG drawing behind `nurture graph --format svg|html`, laid out in Python.

No layout engine and no JavaScript, so the file opens anywhere (a browser, a
wiki, an email) and looks the same everywhere. The layout is deliberately
plain because workflows are mostly linear: one row per step in file order,
a straight arrow to the next row, and every other jump in its own lane on the
right. Lanes are given out shortest-span first so nested jumps never overlap;
each outgoing jump leaves its node at its own height, with its label written
on that horizontal stretch, before any lane begins, so labels never collide.
"""

from __future__ import annotations

import html as htmlmod
from collections.abc import Callable, Mapping
from html import escape

from nurture.definitions import model as m
from nurture.tools.graph import (
    END,
    Counts,
    Edge,
    Node,
    mermaid,
    node_lines,
    nodes_and_edges,
    shorten,
)

LineMaker = Callable[[Node, Counts | None], list[str]]

PILL_W = 84
BOX_X = PILL_W + 24
BOX_W = 250
GAP = 36  # between rows: room for the straight arrow and its label
PORT_FIRST = 14  # first outgoing jump, below the box top
PORT_STEP = 15
LANE_STEP = 22
CHAR_W = 7.0  # average width of an 11px DejaVu Sans character, for layout (generous)
LABEL_CHARS = 31  # what fits on one line of a node box at 13px

_FILL = {
    "send": ("#e3f2fd", "#1e88e5"),
    "wait": ("#fff8e1", "#f9a825"),
    "wait_for": ("#fff3e0", "#fb8c00"),
    "branch": ("#f3e5f5", "#8e24aa"),
    "exit": ("#eceff1", "#546e7a"),
    "": ("#e8f5e9", "#43a047"),  # start and end
}
_OTHER = ("#fafafa", "#78909c")


def _text_width(text: str, size: float = 11) -> float:
    return len(text) * CHAR_W * size / 11


def render_svg(
    title: str, nodes: list[Node], edges: list[Edge], counts: Counts | None, lines: LineMaker
) -> str:
    row = {node.key: i for i, node in enumerate(nodes)}
    side = [e for e in edges if row[e.target] != row[e.source] + 1]
    down: dict[tuple[str, str], list[str]] = {}
    for edge in edges:
        if edge not in side:
            labels = down.setdefault((edge.source, edge.target), [])
            if edge.label and edge.label not in labels:
                labels.append(edge.label)
    ports = {node.key: [e for e in side if e.source == node.key] for node in nodes}

    tops: dict[str, float] = {}
    heights: dict[str, float] = {}
    y = 16.0
    for node in nodes:
        texts = [t for t in lines(node, None)]
        base = 14 + 17 * len(texts)
        heights[node.key] = max(base, PORT_FIRST + PORT_STEP * len(ports[node.key]) + 10)
        tops[node.key] = y
        y += heights[node.key] + GAP
    height = y - GAP + 16

    lanes = _lanes(side, row)
    label_room = max((_text_width(e.label) for e in side if e.label), default=0.0)
    lane_x0 = BOX_X + BOX_W + max(24.0, label_room + 18)
    width = lane_x0 + LANE_STEP * (max(lanes.values(), default=-1) + 1) + 20
    down_room = max((_text_width(" / ".join(v)) for v in down.values()), default=0.0)
    width = max(width, BOX_X + BOX_W / 2 + 10 + down_room + 16)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Arial, sans-serif" '
        'role="img">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#546e7a"/></marker></defs>',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    center = BOX_X + BOX_W / 2
    for (source, target), labels in down.items():
        y1 = tops[source] + heights[source]
        y2 = tops[target]
        out.append(_line(center, y1, center, y2))
        if labels:
            out.append(_label(center + 8, (y1 + y2) / 2 + 4, " / ".join(labels)))
    for edge in side:
        k = ports[edge.source].index(edge)
        sy = tops[edge.source] + PORT_FIRST + PORT_STEP * k
        ty = tops[edge.target] + heights[edge.target] - 9
        lx = lane_x0 + LANE_STEP * lanes[id(edge)]
        right = BOX_X + BOX_W
        path = f"M{right},{sy} H{lx} V{ty} H{right + 1}"
        out.append(
            f'<path d="{path}" fill="none" stroke="#546e7a" stroke-width="1.3" '
            'marker-end="url(#arrow)"/>'
        )
        if edge.label:
            out.append(_label(right + 6, sy - 4, edge.label))
    for node in nodes:
        out += _node(node, tops[node.key], heights[node.key], lines(node, None), counts)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _lanes(side: list[Edge], row: Mapping[str, int]) -> dict[int, int]:
    """A lane per jump, shortest span first, sharing a lane only with disjoint spans."""
    taken: list[list[tuple[int, int]]] = []
    lanes: dict[int, int] = {}
    spans = sorted(
        side, key=lambda e: (abs(row[e.target] - row[e.source]), row[e.source], row[e.target])
    )
    for edge in spans:
        low, high = sorted((row[edge.source], row[edge.target]))
        for n, used in enumerate(taken):
            if all(high < a or low > b for a, b in used):
                used.append((low, high))
                lanes[id(edge)] = n
                break
        else:
            taken.append([(low, high)])
            lanes[id(edge)] = len(taken) - 1
    return lanes


def _line(x1: float, y1: float, x2: float, y2: float) -> str:
    return (
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#546e7a" stroke-width="1.3" '
        'marker-end="url(#arrow)"/>'
    )


def _label(x: float, y: float, text: str) -> str:
    return (
        f'<text x="{x}" y="{y}" font-size="11" fill="#37474f" stroke="#ffffff" '
        f'stroke-width="3" paint-order="stroke">{escape(text)}</text>'
    )


def _node(
    node: Node, top: float, height: float, texts: list[str], counts: Counts | None
) -> list[str]:
    fill, stroke = _FILL.get(node.kind, _OTHER)
    x, w = BOX_X, BOX_W
    if node.shape == "diamond":
        pts = [
            (x + 14, top),
            (x + w - 14, top),
            (x + w, top + height / 2),
            (x + w - 14, top + height),
            (x + 14, top + height),
            (x, top + height / 2),
        ]
        points = " ".join(f"{px},{py}" for px, py in pts)
        shape = f'<polygon points="{points}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
    else:
        radius = {"round": 14.0, "stadium": height / 2}.get(node.shape, 4.0)
        shape = (
            f'<rect x="{x}" y="{top}" width="{w}" height="{height}" rx="{radius}" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
        )
    out = [f"<g><title>{escape(node.step_id or node.key)}</title>", shape]
    baseline = top + 22
    for n, text in enumerate(texts):
        size, color, weight = (13, "#263238", "bold") if n == 0 else (11, "#607d8b", "normal")
        out.append(
            f'<text x="{x + w / 2}" y="{baseline}" font-size="{size}" font-weight="{weight}" '
            f'fill="{color}" text-anchor="middle">{escape(shorten(text, LABEL_CHARS))}</text>'
        )
        baseline += 17
    if counts is not None and node.key != END:
        here = counts.get(None if node.step_id is None else node.step_id, 0)
        word = "here" if node.step_id is not None else "starting"
        pill_fill = "#ff7043" if here else "#eceff1"
        color = "#ffffff" if here else "#607d8b"
        mid = top + height / 2
        out += [
            f'<rect x="8" y="{mid - 11}" width="{PILL_W}" height="22" rx="11" fill="{pill_fill}"/>',
            f'<text x="{8 + PILL_W / 2}" y="{mid + 4}" font-size="12" font-weight="bold" '
            f'fill="{color}" text-anchor="middle">{here} {word}</text>',
        ]
    out.append("</g>")
    return out


# --- the workflow as an SVG, and as a page ------------------------------------------


def svg(workflow: m.Workflow, counts: Counts | None = None) -> str:
    """A self-contained SVG of the workflow (see `nurture.tools.graph_svg` for the layout)."""
    nodes, edges = nodes_and_edges(workflow)
    return render_svg(workflow.name, nodes, edges, counts, node_lines)


def html(workflow: m.Workflow, counts: Counts | None = None) -> str:
    """One page: the SVG, then the Mermaid source to paste elsewhere; no scripts."""
    title = htmlmod.escape(f"nurture · {workflow.name}")
    description = htmlmod.escape(" ".join(workflow.description.split()))
    note = "live counts: running enrollments per step" if counts is not None else "no live counts"
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>"
        "body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px;color:#263238}"
        "h1{font-size:20px;margin:0 0 4px}p{margin:0 0 16px;color:#546e7a;max-width:60em}"
        "pre{background:#f5f5f5;padding:12px;overflow:auto;font-size:12px}"
        "</style></head><body>"
        f"<h1>{htmlmod.escape(workflow.name)}</h1><p>{description}<br><small>"
        f"{htmlmod.escape(workflow.file)} · {note}</small></p>\n"
        f"{svg(workflow, counts)}\n<h2>Mermaid</h2>\n"
        f"<pre>{htmlmod.escape(mermaid(workflow, counts))}</pre>\n</body></html>\n"
    )
