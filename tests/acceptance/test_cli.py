"""The `nurture` command end to end, as a user runs it: a real process, exit codes, output."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
NURTURE = Path(sys.executable).with_name("nurture")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project in a fresh working directory."""
    root = tmp_path / "campaigns"
    root.mkdir()
    shutil.copy(REPO / "nurture.yaml", root)
    shutil.copytree(REPO / "workflows", root / "workflows")
    shutil.copytree(REPO / "templates", root / "templates")
    return root


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    clean["COLUMNS"] = "200"
    return subprocess.run(
        [str(NURTURE), *args],
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_accepts_the_example_project_with_a_summary(project: Path) -> None:
    result = run("validate", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is valid" in result.stdout
    for workflow in ("subscriber-newsletter", "lead-nurture", "mql-acceleration", "lead-recycle"):
        assert workflow in result.stdout
    assert "subscriber → lead (≥25) → mql (≥70) → sql (≥100)" in result.stdout


def test_validate_warns_about_an_engagement_rule_without_a_cap(project: Path) -> None:
    config = project / "nurture.yaml"
    text = config.read_text()
    config.write_text(
        text.replace("      points: 10\n      max_per_day: 3\n", "      points: 10\n", 1)
    )
    line = text.splitlines().index("    - event: email.clicked") + 1
    result = run("validate", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(
        f"nurture.yaml:{line}: warning: scoring.rules[1] (email.clicked, +10) has no cap"
    )
    assert "is valid" in result.stdout
    strict = run("validate", "--strict", cwd=project)
    assert strict.returncode == 1
    assert f"nurture.yaml:{line}: warning: scoring.rules[1]" in strict.stdout
    assert "is valid" not in strict.stdout


def test_validate_lists_every_problem_as_file_line_message(project: Path) -> None:
    workflow = project / "workflows" / "lead-nurture.yaml"
    workflow.write_text(workflow.read_text().replace("wait: 2d", "wait: 2 jours"))
    guide = project / "templates" / "lead" / "guide.mjml"
    lines = guide.read_text().splitlines()
    body_line = next(i for i, line in enumerate(lines) if "Bonjour" in line)
    lines[body_line] = lines[body_line] + " {{ contact.prenom }}"
    guide.write_text("\n".join(lines) + "\n")

    result = run("validate", cwd=project)

    assert result.returncode == 1
    wait_line = next(
        i + 1 for i, line in enumerate(workflow.read_text().splitlines()) if "2 jours" in line
    )
    # One run lists the broken workflow and the broken template together.
    [definition, template] = result.stdout.splitlines()
    assert definition == (
        f"workflows/lead-nurture.yaml:{wait_line}: steps[1].wait: invalid duration '2 jours' "
        "(use a number and a unit: 30s, 15m, 36h, 2d, 1w; or {until: '09:00'})"
    )
    assert template.startswith(f"templates/lead/guide.mjml:{body_line + 1}: ")
    assert "prenom" in template
    assert "2 problems" in result.stderr

    workflow.write_text(workflow.read_text().replace("wait: 2 jours", "wait: 2d"))
    result = run("validate", str(project), cwd=project.parent)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [template]


def test_schema_prints_json_schema(project: Path) -> None:
    result = run("schema", "workflow", cwd=project)
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "nurture workflow"
    assert run("schema", "nope", cwd=project).returncode == 2


def test_import_then_preview_a_real_contact(project: Path) -> None:
    contacts = project / "contacts.csv"
    contacts.write_text(
        "email,first_name,company,stage,industry\n"
        "  Anne.Martin@Example.COM ,Anne,Atelier <Dubreuil>,lead,Industrie\n"
        "bob@,Bob,X,lead,\n"
        "carla@example.com,Carla,Y,vip,\n"
    )
    result = run("contacts", "import", "contacts.csv", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "contacts.csv:3: " in result.stdout and "bob@" in result.stdout
    assert "contacts.csv:4: " in result.stdout and "vip" in result.stdout
    assert "3 rows: 1 created, 0 updated, 0 unchanged, 2 rejected" in result.stdout
    assert (project / "nurture.sqlite3").exists()

    out = project / "anne.html"
    result = run(
        "preview",
        "lead/welcome",
        "--contact",
        "anne.martin@example.com",
        "--out",
        str(out),
        cwd=project,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Subject: Ressource utile pour prioriser vos leads" in result.stdout
    page = out.read_text()
    assert "Anne" in page
    assert "Atelier <Dubreuil>" not in page  # contact data is escaped in the body

    again = run("contacts", "import", "contacts.csv", cwd=project)
    assert "0 created, 0 updated, 1 unchanged, 2 rejected" in again.stdout


def test_preview_of_an_unknown_template_or_contact_says_so(project: Path) -> None:
    result = run("preview", "lead/nope", cwd=project)
    assert result.returncode == 1
    assert "no template 'lead/nope'" in result.stderr
    result = run("preview", "lead/welcome", "--contact", "ghost@example.com", cwd=project)
    assert result.returncode == 1
    assert "no contact with email 'ghost@example.com'" in result.stderr


def test_db_upgrade_is_idempotent(project: Path) -> None:
    first = run("db", "upgrade", cwd=project)
    assert first.returncode == 0 and "database upgraded: empty →" in first.stdout
    second = run("db", "upgrade", cwd=project)
    assert second.returncode == 0 and "database already at" in second.stdout
    current = run("db", "current", cwd=project)
    assert "up to date" in current.stdout


def test_a_configuration_error_names_the_variable(project: Path) -> None:
    result = run("db", "upgrade", cwd=project, env={"NURTURE_DATABASE_URL": "mysql://x@y/z"})
    assert result.returncode == 78
    assert "NURTURE_DATABASE_URL: only sqlite:// and postgresql://" in result.stderr
    assert "Traceback" not in result.stderr


def test_outside_a_project_commands_say_what_is_missing(tmp_path: Path) -> None:
    result = run("validate", cwd=tmp_path)
    assert result.returncode == 1
    assert "not a nurture project" in result.stdout


def test_contacts_imported_or_moved_into_the_handoff_stage_are_handed_to_sales(
    project: Path,
) -> None:
    contacts = project / "contacts.csv"
    contacts.write_text(
        "email,first_name,company,stage\n"
        "anne@example.com,Anne,Atelier,sql\n"
        "bob@example.com,Bob,Batipro,lead\n"
    )
    assert run("contacts", "import", str(contacts), cwd=project).returncode == 0

    listed = run("handoffs", "list", cwd=project)
    assert listed.returncode == 0, listed.stderr
    assert "anne@example.com" in listed.stdout and "bob@example.com" not in listed.stdout

    moved = run(
        "contacts", "move", "bob@example.com", "sql", "--reason", "demo booked", cwd=project
    )
    assert moved.returncode == 0, moved.stderr
    assert "bob@example.com: lead → sql" in moved.stdout
    assert "handed to sales: handoff #2" in moved.stdout
    again = run("contacts", "move", "bob@example.com", "sql", cwd=project)
    assert "already at sql" in again.stdout

    shown = run("handoffs", "show", "2", "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    handoff = json.loads(shown.stdout)
    assert handoff["status"] == "open" and handoff["contact"]["email"] == "bob@example.com"
    assert handoff["actions"][0]["reason"] == "manual"
    assert handoff["now"]["stage_history"][-1] == {
        **handoff["now"]["stage_history"][-1],
        "from": "lead",
        "to": "sql",
        "cause": "manual",
        "reason": "demo booked",
    }
    assert "bob@example.com" in run("handoffs", "list", cwd=project).stdout

    unknown = run("contacts", "move", "bob@example.com", "vip", cwd=project)
    assert unknown.returncode == 1 and "unknown stage 'vip'" in unknown.stderr


def test_an_events_import_lists_every_bad_line_in_the_rejects_file(
    project: Path, tmp_path: Path
) -> None:
    good = '{"id": "g%d", "type": "page.visited", "contact": {"email": "anne@example.com"}}'
    lines = [(good % n).encode() for n in range(5)]
    lines += [
        b'{"id": "bad%d", "type": "nope", "contact": {"email": "a@example.com"}}' % n
        for n in range(55)
    ]
    lines += [b"\xff\xfe not utf-8", b'{"id": "n", "type": "page.visited", "at": "\\u0000"}']
    events = tmp_path / "events.jsonl"
    events.write_bytes(b"\n".join(lines) + b"\n")
    rejects = tmp_path / "rejects.txt"
    result = run("events", "import", str(events), "--rejects", str(rejects), cwd=project)
    assert result.returncode == 2, result.stderr
    assert "5 recorded" in result.stdout and "57 rejected" in result.stdout
    assert f"… and 7 more (all in {rejects})" in result.stdout
    written = rejects.read_text().splitlines()
    assert len(written) == 57
    assert written[-2] == f"{events}:61: not UTF-8 text (byte 1 of the line); save as UTF-8"
    assert written[-1].startswith(f"{events}:62: ")
    assert "Traceback" not in result.stderr


def test_simulate_draws_a_mail_gateway_and_says_what_it_did(project: Path, tmp_path: Path) -> None:
    reactions = tmp_path / "reactions.yaml"
    reactions.write_text(
        "- {template: lead/welcome, event: email.opened, after: 1h, rate: 0.5}\n- machine: 0.4\n"
    )
    args = ["simulate", "--contacts", str(REPO / "examples" / "contacts.csv")]
    args += ["--reactions", str(reactions), "--seed", "42", "--days", "3"]
    args += ["--start", "2026-01-05T08:00:00+00:00"]
    result = run(*args, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "email.clicked — machine: user agent: Proofpoint (not scored)" in result.stdout
    assert "by machines (" in result.stdout and "gateways and image proxies, not scored" in (
        result.stdout.replace("\n", " ")
    )
    lines = [json.loads(line) for line in run(*args, "--json", cwd=project).stdout.splitlines()]
    machine = [line for line in lines if line.get("traffic") == "machine"]
    assert machine and {line["traffic_reason"] for line in machine} == {"user agent: Proofpoint"}
    # Every score change is a line (SPEC §7): a person's opens earn email.opened's points.
    scores = [line for line in lines if line["kind"] == "score"]
    opened = [line for line in scores if line.get("event") == "email.opened"]
    assert opened and {(line["points"], line["rule"]) for line in opened} == {
        (5, "rule:0:email.opened")
    }
    assert all(isinstance(line["score"], int | float) for line in scores)
    assert re.search(r" score +\+5 → [\d.]+  email\.opened \(rule:0:email\.opened\)", result.stdout)

    reactions.write_text("- machine: 0.4\n  by: gatway\n")
    refused = run(*args, cwd=project)
    assert refused.returncode == 1
    assert f"{reactions}:2: reaction 1: by: expected gateway or image-proxy" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_simulate_says_which_variant_of_the_guide_each_lead_got(project: Path) -> None:
    """The example's lead-nurture tests two subject lines of its guide (an A/B test)."""
    args = ["simulate", "--contacts", str(REPO / "examples" / "contacts.csv"), "--days", "4"]
    args += ["--start", "2026-01-05T08:00:00+00:00"]
    lines = [json.loads(line) for line in run(*args, "--json", cwd=project).stdout.splitlines()]
    sends = [line for line in lines if line["kind"] == "send"]
    guides = [line for line in sends if line["step"] == "guide"]
    assert guides and {line["variant"] for line in guides} <= {"a", "b"}
    variants = {"a": "lead/guide", "b": "lead/guide-question"}
    assert all(line["template"] == variants[line["variant"]] for line in guides)
    assert all("variant" not in line for line in sends if line["step"] != "guide")
    printed = run(*args, cwd=project).stdout
    assert re.search(r"lead-nurture/guide +\[variant [ab]\] « ", printed)
    assert "Experiments" in printed and "lead-nurture/guide: variant a" in printed
