"""`nurture graph` end to end on the example project: formats, files, counts, errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from tests.acceptance.test_cli import REPO, project, run

__all__ = ["project"]  # the fixture, shared with the CLI tests


def test_graph_prints_mermaid_and_says_when_there_are_no_counts(project: Path) -> None:
    result = run("graph", "lead-nurture", cwd=project)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("%% workflow lead-nurture")
    assert "flowchart TD" in result.stdout and "✉ lead/welcome" in result.stdout
    assert "no live counts: no database" in result.stderr
    assert not (project / "nurture.sqlite3").exists()  # reading never creates a database
    quiet = run("graph", "lead-nurture", "--no-counts", cwd=project)
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_graph_writes_svg_and_html_files(project: Path) -> None:
    svg = run("graph", "mql-acceleration", "--format", "svg", "--out", "g.svg", cwd=project)
    assert svg.returncode == 0, svg.stderr
    root = ET.parse(project / "g.svg").getroot()
    assert root.tag.endswith("svg") and "mql/demo-invitation" in (project / "g.svg").read_text()
    page = run("graph", "lead-recycle", "-f", "html", "-o", "g.html", "--project", ".", cwd=project)
    assert page.returncode == 0, page.stderr
    text = (project / "g.html").read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "<pre>" in text
    assert "<script" not in text and "recycle/check-in" in text


def test_graph_shows_live_counts_from_the_database(project: Path) -> None:
    contacts = str(REPO / "examples" / "contacts.csv")
    assert run("contacts", "import", contacts, cwd=project).returncode == 0
    result = run("graph", "lead-nurture", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "starting" in result.stdout and "0 here" in result.stdout
    assert "no live counts" not in result.stderr


def test_graph_of_an_unknown_workflow_lists_the_names(project: Path) -> None:
    result = run("graph", "lead-nuture", cwd=project)
    assert result.returncode == 1
    assert "unknown workflow 'lead-nuture'" in result.stderr
    assert "lead-nurture" in result.stderr and "mql-acceleration" in result.stderr
