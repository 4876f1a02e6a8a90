"""A workflow as a picture: Mermaid source, a self-contained SVG, an HTML page.

A marketer reviewing a workflow reads YAML poorly and a diagram well, and an
operator wants to see where contacts are piling up. Everything here is pure
(the model in, text out): the command in `nurture.cli.graph` fetches live
counts and picks the format. The edges are `successors` (the graph the validator
walks) with a reason on each; the tests hold the two to the same edges, so the
picture cannot disagree with what the engine does.

The SVG is laid out in Python (no JavaScript, no network): steps are rows in
file order, the edge to the next row is a straight arrow, and every other jump
(goto, branch case, wait_for outcome, loop back) runs in its own lane on the
right, so lines never cross a node.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from nurture.definitions import model as m

#: Pseudo-step ids: before the first step (an enrollment not started yet) and
#: after the last one (falling off the end completes the workflow).
#: Neither is a valid step id, so a step named `end` or `start` cannot collide.
START = "<start>"
END = "<end>"

#: A step count keyed by step id; None counts enrollments not yet on a step.
Counts = Mapping[str | None, int]

_WEEKDAY_LONG = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_LABEL_MAX = 36


@dataclass(frozen=True)
class Node:
    """One box of a workflow diagram: a step, or the `START`/`END` pseudo-steps."""

    key: str  # a step id, START or END
    label: str
    shape: str  # rect, round, diamond, stadium
    step_id: str | None = None
    index: int = -1
    kind: str = ""
    explicit: bool = False  # the step has an `id:` in its file (auto ids are noise)


@dataclass(frozen=True)
class Edge:
    """One arrow of a workflow diagram; `label` says when it is taken (branch case, wait_for)."""

    source: str
    target: str
    label: str = ""


def duration(span: timedelta) -> str:
    """`2d`, `1d12h`, `2w`: the notation workflow files use."""
    seconds = int(span.total_seconds())
    if seconds and seconds % (7 * 86400) == 0:
        return f"{seconds // (7 * 86400)}w"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def step_label(step: m.Step) -> str:
    """What a person reads on the node: the step's effect, not its YAML."""
    if isinstance(step, m.SendStep) and step.variants:
        return "✉ A/B " + " · ".join(f"{v.name}: {v.template}" for v in step.variants)
    if isinstance(step, m.SendStep):
        return f"✉ {step.template}"
    if isinstance(step, m.WaitStep):
        if step.duration is not None:
            return f"⏳ {duration(step.duration)}"
        parts = []
        if step.until_weekday is not None:
            parts.append(_WEEKDAY_LONG[step.until_weekday])
        if step.until_time is not None:
            parts.append(step.until_time.strftime("%H:%M"))
        return f"⏳ until {' '.join(parts)}"
    if isinstance(step, m.WaitForStep):
        awaited = f"segment {step.segment}" if step.segment else step.event
        return f"👂 {awaited} ≤ {duration(step.timeout)}"
    if isinstance(step, m.BranchStep):
        return "◇ branch"
    if isinstance(step, m.SplitStep):
        return "⑂ split"
    if isinstance(step, m.GotoStep):
        return "⇢ goto"
    if isinstance(step, m.SetStep):
        keys = [*step.properties, *(["tags"] if step.add_tags or step.remove_tags else [])]
        return "✎ set" + (f": {', '.join(keys)}" if keys else "")
    if isinstance(step, m.ScoreStep):
        sign = "+" if step.points >= 0 else ""
        return f"{sign}{_number(step.points)} points"
    if isinstance(step, m.NotifyStep):
        target = step.notify.target if step.notify.kind == "email" else "webhook"
        return f"🔔 notify {target}"
    if isinstance(step, m.ExitStep):
        return f"⏹ exit ({step.reason})"
    return step.kind


def shorten(text: str, limit: int = _LABEL_MAX) -> str:
    """One line, at most `limit` characters, an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _enroll_label(workflow: m.Workflow) -> str:
    enroll = workflow.enroll
    if enroll.stage is not None:
        return f"▶ enroll: stage {enroll.stage}"
    if enroll.event is not None:
        return f"▶ enroll: {enroll.event}"
    if enroll.segment is not None:
        return f"▶ enroll: segment {enroll.segment}"
    return "▶ enroll: " + shorten(enroll.when.source if enroll.when else "", 28)


def nodes_and_edges(workflow: m.Workflow) -> tuple[list[Node], list[Edge]]:
    """The diagram's graph: a start node, one node per step, END when reachable."""
    steps = workflow.steps
    nodes = [Node(START, _enroll_label(workflow), "stadium")]
    edges = [Edge(START, steps[0].id)] if steps else []
    for step in steps:
        shape = {
            m.BranchStep: "diamond",
            m.SplitStep: "diamond",
            m.WaitStep: "round",
            m.WaitForStep: "round",
            m.ExitStep: "stadium",
        }.get(type(step), "rect")
        nodes.append(
            Node(step.id, step_label(step), shape, step.id, step.index, step.kind, step.explicit_id)
        )
        edges += _edges_of(step, steps)
    if any(edge.target == END for edge in edges):
        nodes.append(Node(END, "⏹ end (completed)", "stadium", index=len(steps)))
    return nodes, edges


def _edges_of(step: m.Step, steps: tuple[m.Step, ...]) -> list[Edge]:
    """`successors`, with each edge's reason, and END where control falls off."""
    following = steps[step.index + 1].id if step.index + 1 < len(steps) else END
    if isinstance(step, m.ExitStep):
        return []
    if isinstance(step, m.GotoStep):
        return [Edge(step.id, step.target)]
    if isinstance(step, m.WaitForStep):
        return [
            Edge(step.id, step.on_event or following, "event"),
            Edge(step.id, step.on_timeout or following, "timeout"),
        ]
    if isinstance(step, m.BranchStep):
        edges = [
            Edge(step.id, case.goto, shorten(case.when.source) if case.when else "otherwise")
            for case in step.cases
        ]
        if step.cases[-1].when is not None:
            edges.append(Edge(step.id, following, "otherwise"))
        return edges
    if isinstance(step, m.SplitStep):
        total = sum(arm.weight for arm in step.arms)
        return [Edge(step.id, arm.goto, f"{arm.weight / total:.0%}") for arm in step.arms]
    return [Edge(step.id, following)]


# --- Mermaid ------------------------------------------------------------------------


def mermaid_id(key: str, index: int) -> str:
    """A Mermaid-safe node id: step ids may hold '-' and may be a keyword like `end`."""
    if key == START:
        return "start_node"
    if key == END:
        return "end_node"
    return f"s{index}_" + re.sub(r"[^A-Za-z0-9_]", "_", key)


def mermaid_text(text: str) -> str:
    """Text inside a quoted Mermaid label: entity codes for what Mermaid would parse."""
    out = []
    for char in text:
        if char in '"#<>[](){}|;`&\\':
            out.append(f"#{ord(char)};")
        else:
            out.append(char)
    return "".join(out)


_MERMAID_SHAPES = {
    "rect": ('["', '"]'),
    "round": ('("', '")'),
    "diamond": ('{"', '"}'),
    "stadium": ('(["', '"])'),
}
_CLASSES = {
    "send": "fill:#e3f2fd,stroke:#1e88e5",
    "wait": "fill:#fff8e1,stroke:#f9a825",
    "wait_for": "fill:#fff8e1,stroke:#f9a825",
    "branch": "fill:#f3e5f5,stroke:#8e24aa",
    "exit": "fill:#eceff1,stroke:#546e7a",
}


def node_lines(node: Node, counts: Counts | None) -> list[str]:
    """The label, the step id under it, and "N here" when counts are known."""
    lines = [node.label]
    if node.explicit:
        lines.append(f"#{node.step_id}")
    if counts is not None and node.key != END:
        here = counts.get(None if node.key == START else node.key, 0)
        lines.append(f"{here} {'starting' if node.key == START else 'here'}")
    return lines


def mermaid(workflow: m.Workflow, counts: Counts | None = None) -> str:
    """Mermaid `flowchart TD` source; paste it in GitHub, GitLab or mermaid.live."""
    nodes, edges = nodes_and_edges(workflow)
    ids = {node.key: mermaid_id(node.key, node.index) for node in nodes}
    out = [f"%% workflow {workflow.name} ({workflow.file})", "flowchart TD"]
    for node in nodes:
        opening, closing = _MERMAID_SHAPES[node.shape]
        text = "<br/>".join(mermaid_text(line) for line in node_lines(node, counts))
        out.append(f"    {ids[node.key]}{opening}{text}{closing}")
    for edge in edges:
        label = f'|"{mermaid_text(edge.label)}"|' if edge.label else ""
        out.append(f"    {ids[edge.source]} -->{label} {ids[edge.target]}")
    for kind, style in _CLASSES.items():
        members = [ids[s.id] for s in workflow.steps if s.kind == kind]
        if members:
            out.append(f"    classDef {kind.replace('_', '')} {style}")
            out.append(f"    class {','.join(members)} {kind.replace('_', '')}")
    return "\n".join(out) + "\n"
