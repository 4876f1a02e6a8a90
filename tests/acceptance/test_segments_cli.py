"""`nurture segments`, `explain` and `validate` on segments, end to end as an operator runs them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.acceptance.test_cli import REPO, project, run

__all__ = ["project"]  # the fixture, shared with the CLI tests

ANNE = "anne.martin@dubreuil.example.com"


def _three_pricing_visits(root: Path) -> None:
    assert (
        run("contacts", "import", str(REPO / "examples" / "contacts.csv"), cwd=root).returncode == 0
    )
    now = datetime.now(UTC)
    events = root / "events.jsonl"
    events.write_text(
        "".join(
            json.dumps(
                {
                    "id": f"visit-{n}",
                    "type": "page.visited",
                    "at": (now - timedelta(hours=n)).isoformat(),
                    "contact": {"email": ANNE},
                    "properties": {"url": "https://example.com/pricing"},
                }
            )
            + "\n"
            for n in range(3)
        )
    )
    result = run("events", "import", str(events), cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr


def test_segments_lists_each_segment_with_its_size(project: Path) -> None:
    _three_pricing_visits(project)

    result = run("segments", "--json", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    [hunters] = json.loads(result.stdout)["segments"]
    assert hunters["segment"] == "pricing-hunters" and hunters["size"] == 1
    assert ">= 3 in 1w" in hunters["definition"]

    table = run("segments", cwd=project)
    assert table.returncode == 0, table.stderr
    assert "pricing-hunters" in table.stdout and " 1 " in table.stdout

    explained = run("explain", ANNE, cwd=project)
    assert explained.returncode == 0, explained.stderr
    assert "pricing-hunters: in since" in explained.stdout
    assert "3 page.visited within 1w (needs >= 3)" in explained.stdout


def test_validate_points_at_a_segment_no_one_declared(project: Path) -> None:
    workflow = project / "workflows" / "lead-nurture.yaml"
    text = workflow.read_text()
    workflow.write_text(text.replace("in_segment('pricing-hunters')", "in_segment('pricing')"))
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "in_segment" in row)

    result = run("validate", cwd=project)
    assert result.returncode == 1
    assert (
        f"workflows/lead-nurture.yaml:{line}: steps[9].branch[0].when: in_segment('pricing'): "
        "no segment named 'pricing' (did you mean 'pricing-hunters'?)"
    ) in result.stdout
