"""The suppression and GDPR commands end to end: a real process, exit codes, output."""

from __future__ import annotations

import json
from pathlib import Path

from tests.acceptance.test_cli import project, run

__all__ = ["project"]  # the example project fixture, shared with test_cli

CONTACTS = (
    "email,first_name,last_name,company,stage,consent\n"
    "anne@example.com,Anne,Martin,Atelier,lead,granted\n"
    "bob@example.com,Bob,Petit,Batipro,subscriber,\n"
)


def _import(project: Path) -> None:
    (project / "contacts.csv").write_text(CONTACTS)
    result = run("contacts", "import", "contacts.csv", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_suppress_list_and_unsuppress(project: Path) -> None:
    _import(project)
    result = run("suppress", "Bob@Example.com", "--reason", "asked by phone", cwd=project)
    assert result.returncode == 0, result.stderr
    assert "bob@example.com suppressed (its workflows ended)" in result.stdout
    again = run("suppress", "bob@example.com", cwd=project)
    assert "already suppressed (manual)" in again.stdout
    ahead = run("suppress", "zoe@example.com", cwd=project)
    assert "zoe@example.com suppressed (no contact yet)" in ahead.stdout
    assert run("suppress", "not-an-address", cwd=project).returncode == 2

    listed = run("suppressions", "list", cwd=project)
    assert listed.returncode == 0
    assert "bob@example.com" in listed.stdout and "asked by phone" in listed.stdout
    lines = run("suppressions", "list", "--json", cwd=project).stdout.splitlines()
    assert [json.loads(line)["email"] for line in lines] == ["bob@example.com", "zoe@example.com"]
    explained = json.loads(run("explain", "bob@example.com", "--json", cwd=project).stdout)
    assert explained["not_emailed_because"] == "suppressed:manual"

    assert run("unsuppress", "bob@example.com", cwd=project).returncode == 0
    explained = json.loads(run("explain", "bob@example.com", "--json", cwd=project).stdout)
    assert explained["contact"]["suppressed"] is None
    gone = run("unsuppress", "bob@example.com", cwd=project)
    assert gone.returncode == 1 and "is not suppressed" in gone.stderr


def test_export_then_erase_then_a_reimport_stays_suppressed(project: Path) -> None:
    _import(project)
    result = run("contacts", "export", "anne@example.com", "--out", "anne.json", cwd=project)
    assert result.returncode == 0, result.stderr
    exported = json.loads((project / "anne.json").read_text())
    assert exported["contact"]["last_name"] == "Martin"
    assert exported["consent"]["proof"] == {"source": "import:contacts.csv:2"}
    assert [e["workflow"] for e in exported["enrollments"]] == ["lead-nurture"]
    assert (project / "anne.json").stat().st_mode & 0o777 == 0o600
    ghost = run("contacts", "export", "ghost@example.com", cwd=project)
    assert ghost.returncode == 1 and "no contact" in ghost.stderr

    erased = run("contacts", "erase", "anne@example.com", "--yes", cwd=project)
    assert erased.returncode == 0, erased.stderr
    assert "erased" in erased.stdout and "stays suppressed" in erased.stdout
    unconfirmed = run("contacts", "erase", "bob@example.com", cwd=project)
    assert unconfirmed.returncode == 1  # no --yes and nobody to say yes

    after = json.loads(run("contacts", "export", "anne@example.com", cwd=project).stdout)
    assert after["contact"] is None and after["suppression"]["reason"] == "erased"
    listed = run("suppressions", "list", cwd=project).stdout
    assert "(erased) sha256:" in listed and "anne" not in listed

    again = run("contacts", "import", "contacts.csv", cwd=project)
    assert again.returncode == 0
    assert "anne@example.com is on the suppression list (erased)" in again.stdout
    explained = json.loads(run("explain", "anne@example.com", "--json", cwd=project).stdout)
    assert explained["not_emailed_because"] == "suppressed:erased"
