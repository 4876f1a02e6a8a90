"""`nurture report` end to end: a database with contacts, events and a handoff."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.acceptance.test_cli import REPO, project, run

__all__ = ["project"]  # the fixture, shared with the CLI tests


def _with_data(root: Path) -> None:
    assert (
        run("contacts", "import", str(REPO / "examples" / "contacts.csv"), cwd=root).returncode == 0
    )
    at = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    julien = {"email": "julien.lefebvre@transalpes.example.com"}  # an MQL: these make him sql
    kinds = ("demo.requested", "meeting.booked", "content.downloaded", "webinar.registered")
    events = root / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps({"id": f"r{n}", "type": kind, "at": at, "contact": julien}) + "\n"
            for n, kind in enumerate(kinds)
        )
    )
    result = run("events", "import", str(events), cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_report_json_and_html_on_a_database_with_data(project: Path) -> None:
    _with_data(project)
    result = run("report", "--since", "7d", "--json", "--html", "report.html", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    stages = {s["stage"]: s for s in report["stages"]}
    assert stages["lead"]["contacts"] > 0 and stages["lead"]["entered"] > 0
    assert report["handoffs"]["created"] == 1 and report["handoffs"]["open"] == 1
    mql = next(c for c in report["conversion"] if c["from"] == "mql")
    assert mql["converted"] == 1 and mql["entered"] >= 1
    page = (project / "report.html").read_text()
    assert page.startswith("<!doctype html>") and page.count("<svg") >= 3
    assert "<script" not in page and "<link" not in page


def test_report_prints_tables_and_refuses_a_bad_period(project: Path) -> None:
    _with_data(project)
    result = run("report", cwd=project)
    assert result.returncode == 0, result.stderr
    for title in ("Funnel", "Time in stage", "Sales handoffs", "Scoring calibration", "Emails"):
        assert title in result.stdout
    bad = run("report", "--since", "yesterday", cwd=project)
    assert bad.returncode == 1 and "--since" in bad.stderr
