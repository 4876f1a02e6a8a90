"""`nurture users`: the sales accounts, as an admin runs them on the server (issue #16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.acceptance.test_cli import project, run

__all__ = ["project"]

LINK = re.compile(r"^http://localhost:8000/sales/password\?token=[A-Za-z0-9_-]{40,}$", re.M)


def test_accounts_for_the_owners_then_one_by_hand(project: Path) -> None:
    owners = run("users", "add-owners", cwd=project)
    assert owners.returncode == 0, owners.stdout + owners.stderr
    for line in (
        "sophie.durand@example.com (sales) created",
        "marc.leroy@example.com (sales) created",
        "helene.garnier@example.com (lead) created",
    ):
        assert line in owners.stdout
    assert len(LINK.findall(owners.stdout)) == 3
    again = run("users", "add-owners", cwd=project)
    assert "every owner has an account" in again.stdout and not LINK.findall(again.stdout)

    added = run(
        "users", "add", "Boss@Example.com", "--name", "La Boss", "--role", "admin", cwd=project
    )
    assert added.returncode == 0, added.stderr
    assert "account boss@example.com (admin) created" in added.stdout
    assert len(LINK.findall(added.stdout)) == 1
    listed = run("users", "list", cwd=project).stdout
    assert re.search(r"boss@example.com\s+La Boss\s+admin\s+Europe/Paris\s+no password yet", listed)
    assert re.search(r"marc.leroy@example.com\s+Marc Leroy\s+sales", listed)

    reset = run("users", "reset", "marc.leroy@example.com", cwd=project)
    assert reset.returncode == 0 and len(LINK.findall(reset.stdout)) == 1
    assert run("users", "disable", "marc.leroy@example.com", cwd=project).returncode == 0
    assert re.search(r"marc.leroy@example.com.*disabled", run("users", "list", cwd=project).stdout)
    refused = run("users", "reset", "marc.leroy@example.com", cwd=project)
    assert refused.returncode == 1 and "disabled" in refused.stderr
    updated = run("users", "update", "marc.leroy@example.com", "--role", "lead", cwd=project)
    assert updated.returncode == 0
    assert re.search(
        r"marc.leroy@example.com\s+Marc Leroy\s+lead", run("users", "list", cwd=project).stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("add", "x@y", "--name", "X"), "not an email address"),
        (("add", "x@example.com", "--name", "X", "--role", "king"), "unknown role 'king'"),
        (("add", "x@example.com", "--name", "X", "--timezone", "Mars/Base"), "unknown timezone"),
        (("reset", "nobody@example.com"), "no account for nobody@example.com"),
    ],
)
def test_bad_input_says_what(project: Path, args: tuple[str, ...], message: str) -> None:
    result = run("users", *args, cwd=project)
    assert result.returncode == 1
    assert message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("NURTURE_API_KEYS", "k"),
        ("NURTURE_SECRET_KEY", "short-secret"),
        ("NURTURE_WEBHOOK_SECRET", "x"),
    ],
)
def test_a_short_secret_is_refused_at_start(project: Path, variable: str, value: str) -> None:
    """Issue #16: one-character API keys and webhook secrets were accepted."""
    result = run("serve", "--port", "0", cwd=project, env={variable: value})
    assert result.returncode == 78
    assert f"{variable}: " in result.stderr and "at least 16 characters" in result.stderr
    assert "got" not in result.stderr  # the value is never echoed
