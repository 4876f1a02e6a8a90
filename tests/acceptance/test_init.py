"""`nurture init`: a new project that validates and whose own workflow tests pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

NURTURE = Path(sys.executable).with_name("nurture")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NURTURE_", "PYTEST_"))}
    env["COLUMNS"] = "200"
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


def test_init_scaffolds_a_valid_tested_project_and_refuses_to_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "mes-campagnes"

    created = run(str(NURTURE), "init", str(target), cwd=tmp_path)
    assert created.returncode == 0, created.stdout + created.stderr
    for name in (
        "nurture.yaml",
        "workflows/lead-nurture.yaml",
        "templates/_layouts/base.mjml",
        "templates/lead/bienvenue.mjml",
        "templates/lead/guide.mjml",
        "templates/sales/handoff.mjml",
        "tests/test_workflows.py",
        "examples/contacts.csv",
        "README.md",
    ):
        assert (target / name).is_file(), name
    layout = (target / "templates/_layouts/base.mjml").read_text(encoding="utf-8")
    assert (
        "{{ unsubscribe_url }}" in layout and "<mj-preview>{{ preheader }}</mj-preview>" in layout
    )

    validated = run(str(NURTURE), "validate", str(target), cwd=tmp_path)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "warning" not in validated.stdout + validated.stderr  # a newcomer's first command

    # The generated tests, as the marketing team runs them (the plugin loads by entry point).
    tested = run(sys.executable, "-m", "pytest", "tests", "-q", "-p", "nurture", cwd=target)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "5 passed" in tested.stdout

    again = run(str(NURTURE), "init", str(target), cwd=tmp_path)
    assert again.returncode == 1
    assert "not empty" in again.stderr
    forced = run(str(NURTURE), "init", str(target), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
