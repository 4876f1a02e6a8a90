"""`nurture preview`: every template of the example project, as a marketer previews it."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from nurture.cli.app import app
from tests.acceptance.test_cli import REPO, project, run

__all__ = ["project"]  # the fixture, shared with the CLI tests

TEMPLATES = sorted(
    path.relative_to(REPO / "templates").with_suffix("").as_posix()
    for path in (REPO / "templates").rglob("*.mjml")
    if not any(part.startswith("_") for part in path.relative_to(REPO / "templates").parts)
)


def preview(root: Path, *args: str) -> tuple[int, str]:
    """In-process: a render each, without a process start per template."""
    result = CliRunner().invoke(app, ["preview", *args, "--project", str(root)])
    return result.exit_code, result.output


def test_the_example_has_contact_and_sales_templates() -> None:
    assert "lead/welcome" in TEMPLATES
    assert {"sales/handoff", "sales/digest", "sales/reminder", "sales/escalation"} <= set(TEMPLATES)


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_of_the_example_previews(project: Path, template: str) -> None:
    code, output = preview(project, template)
    assert code == 0, output
    assert output.startswith("Subject: ") and "text part" in output


def test_sales_emails_preview_with_the_sample_handoff_and_digest(project: Path) -> None:
    code, output = preview(project, "sales/handoff")
    assert code == 0, output
    assert "Anne Martin" in output
    assert "https://nurture.example.com/sales/handoffs/1" in output  # the sample's inbox link
    code, output = preview(project, "sales/digest")
    assert code == 0, output
    assert "Vos leads qualifiés de la semaine (1)" in output


def test_a_broken_workflow_does_not_stop_previews(project: Path) -> None:
    workflow = project / "workflows" / "mql-acceleration.yaml"
    workflow.write_text(workflow.read_text().replace("steps:", "stepz:", 1))
    code, output = preview(project, "lead/welcome")
    assert code == 0, output
    assert "Subject: Ressource utile pour prioriser vos leads" in output


def test_a_broken_nurture_yaml_is_reported_since_templates_read_its_properties(
    project: Path,
) -> None:
    config = project / "nurture.yaml"
    config.write_text(config.read_text().replace("frequency_cap:", "frequncy_cap:"))
    code, output = preview(project, "lead/welcome")
    assert code == 1
    assert "nurture.yaml:" in output and "frequncy_cap" in output


def test_the_sample_contact_reads_like_an_email(project: Path) -> None:
    code, output = preview(project, "lead/welcome")
    assert code == 0, output
    assert "Vous avez consulté « Le guide du lead scoring »" in output
    assert "exemple »" not in output


def test_a_layout_says_it_is_previewed_through_the_emails_using_it(project: Path) -> None:
    code, output = preview(project, "_layouts/internal")
    assert code == 1
    assert "'_layouts/internal' is a layout or partial, not an email" in output
    assert "nurture preview sales/digest" in output and "expected" not in output
    code, output = preview(project, "_layouts/nope")
    assert code == 1 and "no template '_layouts/nope'" in output


def test_a_real_handoff_previews_as_its_owner_gets_it(project: Path) -> None:
    contacts = project / "contacts.csv"
    contacts.write_text(
        "email,first_name,last_name,company,stage\nbob@example.com,Bob,Roy,Batipro,sql\n"
    )
    assert run("contacts", "import", str(contacts), cwd=project).returncode == 0

    for template in ("sales/handoff", "sales/reminder", "sales/escalation"):
        shown = run("preview", template, "--handoff", "1", cwd=project)
        assert shown.returncode == 0, shown.stdout + shown.stderr
        assert "Bob Roy" in shown.stdout
    shown = run("preview", "sales/handoff", "--handoff", "1", cwd=project)
    assert "Batipro" in shown.stdout
    assert "/sales/handoffs/1" in shown.stdout

    missing = run("preview", "sales/handoff", "--handoff", "9", cwd=project)
    assert missing.returncode == 1 and "no handoff #9" in missing.stderr
    digest = run("preview", "sales/digest", "--handoff", "1", cwd=project)
    assert digest.returncode == 1 and "weekly digest" in digest.stderr
    contact = run("preview", "lead/welcome", "--handoff", "1", cwd=project)
    assert contact.returncode == 1 and "--contact" in contact.stderr
