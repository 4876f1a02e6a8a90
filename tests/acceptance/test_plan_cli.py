"""`nurture plan` and `nurture apply` end to end on the example project."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.acceptance.test_cli import REPO, project, run

__all__ = ["project"]  # the fixture, shared with the CLI tests


def _plan(root: Path, *args: str) -> dict[str, dict[str, Any]]:
    result = run("plan", "--json", *args, cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
    return {w["name"]: w for w in json.loads(result.stdout)["workflows"]}


def test_plan_then_apply_migrate_after_removing_a_step(project: Path) -> None:
    imported = run("contacts", "import", str(REPO / "examples" / "contacts.csv"), cwd=project)
    assert imported.returncode == 0, imported.stderr
    assert {w["status"] for w in _plan(project).values()} == {"new"}
    first = run("apply", "--yes", cwd=project)
    assert first.returncode == 0, first.stderr
    assert "deployed lead-nurture" in first.stdout

    workflow = project / "workflows" / "lead-nurture.yaml"
    workflow.write_text(workflow.read_text().replace("  - id: welcome\n", "  - id: hello\n"))
    lead = _plan(project, "--migrate")["lead-nurture"]
    assert (lead["status"], lead["added"], lead["removed"]) == ("changed", ["hello"], ["welcome"])
    [group] = lead["groups"]  # imported leads, not started yet
    assert group["outcome"] == "same-step" and group["count"] > 0
    # Not started: their welcome is due now, moved or not; the plan says so.
    assert group["sends"] == f"{group['count']} contacts: lead/welcome sent now, as before"
    assert group["sends_now"] and group["next_email"]["after"]["template"] == "lead/welcome"
    shown = run("plan", "--migrate", cwd=project)
    assert "Sent at once when this is applied:" in shown.stdout

    shown = run("plan", cwd=project)
    assert "changed" in shown.stdout and "stays on version 1" in shown.stdout

    applied = run("apply", "--migrate", "--yes", cwd=project)
    assert applied.returncode == 0, applied.stderr
    assert f"{group['count']} enrollment(s) migrated" in applied.stdout
    after = _plan(project)
    assert after["lead-nurture"]["status"] == "unchanged" and after["lead-nurture"]["groups"] == []
    assert "Nothing to apply" in run("plan", cwd=project).stdout
