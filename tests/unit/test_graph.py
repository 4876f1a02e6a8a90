"""`nurture.tools.graph`: labels, edges, counts and escaping of the workflow diagrams."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import nurture.tools.graph as graph
import nurture.tools.graph_svg as graph_svg
from nurture.definitions import model as m
from nurture.definitions.loader import load_project
from nurture.definitions.workflow import parse_workflow, successors

REPO = Path(__file__).parents[2]

EVERY_KIND = """
name: every-kind
enroll: {event: custom.signup}
steps:
  - send: lead/welcome
  - wait: 2d
  - wait: {until: "monday 09:00"}
  - id: listen
    wait_for: {event: email.clicked, timeout: 5d}
    on_event: scored
    on_timeout: route
  - id: route
    branch:
      - when: "contact.score >= 40 and contact.company == 'A [very] \\"odd\\" | company'"
        goto: scored
      - when: "contact.score < 0"
        goto: bye
  - id: tag
    set: {company: Acme, tags: {add: [x]}}
  - id: ping
    notify: {webhook: "https://crm.example.com/hook"}
  - goto: bye
  - id: scored
    score: 10
  - score: {points: -5, reason: meh}
  - id: bye
    exit: unsubscribed-ish
"""


def _workflow(text: str = EVERY_KIND) -> m.Workflow:
    workflow, problems = parse_workflow(text, "workflows/test.yaml", None)
    assert workflow is not None, problems
    return workflow


def _mermaid_edges(source: str) -> set[tuple[str, str]]:
    return set(re.findall(r"^\s+(\w+) -->(?:\|[^|]*\|)? (\w+)$", source, re.M))


def test_every_step_kind_has_its_readable_label() -> None:
    text = graph.mermaid(_workflow())
    for label in (
        "✉ lead/welcome",
        "⏳ 2d",
        "⏳ until monday 09:00",
        "👂 email.clicked ≤ 5d",
        "◇ branch",
        "⇢ goto",
        "✎ set",
        "+10 points",
        "-5 points",
        "🔔 notify webhook",
        "⏹ exit #40;unsubscribed-ish#41;",
        "▶ enroll: custom.signup",
    ):
        assert label in text, label
    assert text.startswith("%% workflow every-kind") and "\nflowchart TD\n" in text


def test_every_successor_edge_is_drawn_and_end_only_where_control_falls_off() -> None:
    for workflow in [_workflow(), *load_project(REPO).workflows.values()]:
        source = graph.mermaid(workflow)
        drawn = _mermaid_edges(source)
        ids = {s.id: graph.mermaid_id(s.id, s.index) for s in workflow.steps}
        for step in workflow.steps:
            for target in successors(step, workflow.steps):
                assert (ids[step.id], ids[target]) in drawn, (workflow.name, step.id, target)
        step_edges = {e for e in drawn if e[0] != "start_node" and e[1] != "end_node"}
        expected = {
            (ids[s.id], ids[t]) for s in workflow.steps for t in successors(s, workflow.steps)
        }
        assert step_edges == expected
        last = workflow.steps[-1]
        falls_off = not isinstance(last, m.ExitStep | m.GotoStep)
        assert ("end_node" in source) == falls_off, workflow.name


def test_branch_and_wait_for_edges_are_labelled() -> None:
    text = graph.mermaid(_workflow())
    assert '|"event"| s8_scored' in text and '|"timeout"| s4_route' in text
    # The condition, shortened, escaped: no raw quote, bracket or pipe inside the label.
    branch = [line for line in text.splitlines() if line.strip().startswith("s4_route -->")]
    assert len(branch) == 3
    assert branch[0].startswith('    s4_route -->|"contact.score #62;= 40 and contact')
    assert "…" in branch[0] and '|"contact.score #60; 0"|' in branch[1]
    assert '|"otherwise"| s5_tag' in branch[2]
    for line in branch:
        label = line.split('|"', 1)[1].rsplit('"|', 1)[0]
        assert not set(label) & set('"[]|<>{}')


def test_odd_step_ids_get_safe_node_ids() -> None:
    workflow = _workflow(
        """
name: odd
enroll: {event: custom.x}
steps:
  - id: end
    send: a/b
  - id: start
    wait: 1d
  - id: a-b
    goto: end-2
  - id: end-2
    exit: done
"""
    )
    text = graph.mermaid(workflow)
    assert "s0_end[" in text and "s2_a_b[" in text and "s3_end_2(" in text
    assert "s2_a_b --> s3_end_2" in text and "start_node --> s0_end" in text
    assert "end_node" not in text  # a step named `end` is not the END node
    for node_id in re.findall(r"^\s+(\w+)[\[({]", text, re.M):
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", node_id)


def test_labels_escape_what_mermaid_would_parse() -> None:
    assert graph.mermaid_text('a "b" [c] (d) {e} | <f> #g') == (
        "a #34;b#34; #91;c#93; #40;d#41; #123;e#125; #124; #60;f#62; #35;g"
    )


def test_counts_show_on_each_node() -> None:
    workflow = _workflow()
    counts = {"listen": 7, "tag": 2, None: 3}
    text = graph.mermaid(workflow, counts)
    assert "👂 email.clicked ≤ 5d<br/>#35;listen<br/>7 here" in text
    assert "3 starting" in text and text.count("0 here") == len(workflow.steps) - 2
    assert "here" not in graph.mermaid(workflow)
    picture = graph_svg.svg(workflow, counts)
    assert ">7 here<" in picture and ">3 starting<" in picture


@pytest.mark.parametrize("name", ["lead-nurture", "mql-acceleration", "lead-recycle"])
def test_svg_is_self_contained_xml_with_every_step(name: str) -> None:
    workflow = load_project(REPO).workflows[name]
    picture = graph_svg.svg(workflow)
    root = ET.fromstring(picture)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "<script" not in picture and "http" not in picture.replace(
        'xmlns="http://www.w3.org/2000/svg"', ""
    )
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for step in workflow.steps:
        assert graph.shorten(graph.step_label(step), 31) in texts
    assert "event" in texts and "timeout" in texts


def test_svg_escapes_labels_and_html_embeds_svg_and_mermaid() -> None:
    workflow = _workflow()
    ET.fromstring(graph_svg.svg(workflow))  # the odd branch condition is valid XML
    page = graph_svg.html(workflow)
    assert page.startswith("<!doctype html>") and "<svg" in page and "<pre>" in page
    assert "flowchart TD" in page and "<script" not in page and "<link" not in page


def test_durations_read_like_the_files() -> None:
    from datetime import timedelta

    assert graph.duration(timedelta(days=2)) == "2d"
    assert graph.duration(timedelta(days=14)) == "2w"
    assert graph.duration(timedelta(days=1, hours=12)) == "1d12h"
    assert graph.duration(timedelta(minutes=15)) == "15m"


def test_live_counts_skip_a_missing_or_unmigrated_database(tmp_path: Path) -> None:
    from nurture.cli.graph import live_counts
    from nurture.settings import Settings

    missing = Settings(database_url=f"sqlite:///{tmp_path / 'none.sqlite3'}")
    assert live_counts(missing, "x") == (None, f"no database at {missing.database_url}")
    assert not (tmp_path / "none.sqlite3").exists()
    (tmp_path / "empty.sqlite3").write_bytes(b"")
    empty = Settings(database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    counts, reason = live_counts(empty, "x")
    assert counts is None and reason is not None and "nurture db upgrade" in reason
