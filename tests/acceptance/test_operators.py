"""What an operator meets first: the hints, the files left behind, the messages.

Each test follows a line the command prints, or a file it leaves, the way a
newcomer would: literally, from a shell where nurture's venv is not activated,
with git watching the folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
NURTURE = Path(sys.executable).with_name("nurture")
#: A shell where nurture's venv is not on PATH: what `nurture init` prints must work there.
BARE_PATH = os.pathsep.join(
    p for p in os.environ.get("PATH", "").split(os.pathsep) if Path(p) != NURTURE.parent
)
#: What nurture writes beside a project that must never be committed.
GENERATED = (".nurture-secret", "nurture.sqlite3", "nurture.sqlite3-wal", "nurture.sqlite3-shm")


def run(
    *args: str, cwd: Path, env: dict[str, str] | None = None, path: str | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("NURTURE_", "PYTEST_"))}
    clean.pop("COLUMNS", None)  # as a pipe sees it: no terminal, no width
    if path is not None:
        clean["PATH"] = path
    return subprocess.run(
        list(args),
        cwd=cwd,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=180,
    )


def _ignored(repository: Path, names: tuple[str, ...]) -> set[str]:
    listed = subprocess.run(
        ["git", "check-ignore", "--no-index", *names],
        cwd=repository,
        capture_output=True,
        text=True,
        check=False,
    )
    return set(listed.stdout.split())


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_repository_ignores_the_signing_key_and_the_sqlite_files() -> None:
    assert _ignored(REPO, (*GENERATED, "outbox/x.eml", "nurture-demo/outbox/x.eml")) == {
        *GENERATED,
        "outbox/x.eml",
        "nurture-demo/outbox/x.eml",
    }


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_init_writes_a_gitignore_and_a_next_hint_that_works_as_printed(tmp_path: Path) -> None:
    created = run(str(NURTURE), "init", "mes-campagnes", cwd=tmp_path, path=BARE_PATH)
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "mes-campagnes"
    assert "+ .gitignore" in created.stdout
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    kept = ("nurture.yaml", "workflows/lead-nurture.yaml", "tests/test_workflows.py")
    assert _ignored(project, (*GENERATED, "outbox/x.eml", ".env", *kept)) == {
        *GENERATED,
        "outbox/x.eml",
        ".env",
    }

    # The hint, pasted into a shell where the venv is not activated.
    hint = next(line for line in created.stdout.splitlines() if "next:" in line)
    command = hint.split("next:", 1)[1].strip()
    followed = run("bash", "-c", command, cwd=tmp_path, path=BARE_PATH)
    assert followed.returncode == 0, command + "\n" + followed.stdout + followed.stderr
    assert "is valid" in followed.stdout and "5 passed" in followed.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the example project, its events file included."""
    root = tmp_path / "campaigns"
    root.mkdir()
    shutil.copy(REPO / "nurture.yaml", root)
    for folder in ("workflows", "templates", "examples"):
        shutil.copytree(REPO / folder, root / folder)
    return root


def test_events_import_quotes_each_lines_relative_time_and_exits_2(project: Path) -> None:
    result = run(str(NURTURE), "events", "import", "examples/events.jsonl", cwd=project)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("examples/events.jsonl:1: 'at' is relative ('+20h'):"), lines[0]
    assert "ISO 8601" in lines[0]
    third = next(line for line in lines if line.startswith("examples/events.jsonl:3:"))
    assert "('+1d')" in third


def test_piped_output_is_neither_cut_nor_wrapped_at_80_columns(project: Path) -> None:
    email = "anne.martin-dubreuil.de-la-fontaine@un-domaine-assez-long.example.com"
    (project / "people.csv").write_text(
        f"email,first_name,company,stage\n{email},Anne,Atelier Dubreuil et Fils,sql\n",
        encoding="utf-8",
    )
    imported = run(str(NURTURE), "contacts", "import", "people.csv", cwd=project)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    listed = run(str(NURTURE), "handoffs", "list", cwd=project)  # stdout is a pipe, no COLUMNS
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if email in line)
    assert "Atelier Dubreuil et Fils" in row and "…" not in listed.stdout


def _emails_written(stdout: str) -> tuple[int, int]:
    line = next(line for line in stdout.splitlines() if "emails written" in line)
    words = line.split()
    written = int(words[1])
    to_sales = int(words[words.index("sales)") - 2]) if "sales)" in words else 0
    return written, to_sales


def test_demo_keeps_its_data_in_its_own_folder_and_the_next_commands_work(
    tmp_path: Path,
) -> None:
    demo = run(
        str(NURTURE), "demo", "--contacts", "80", "--days", "30", cwd=tmp_path, path=BARE_PATH
    )
    assert demo.returncode == 0, demo.stdout + demo.stderr
    folder = tmp_path / "nurture-demo"
    assert not (tmp_path / "outbox").exists()  # never mixed with a real project's outbox
    assert (folder / "nurture.sqlite3").is_file() and (folder / "nurture.yaml").is_file()
    assert (folder / ".gitignore").read_text().splitlines()[-1] == "*"

    # Every file written is counted, the emails to sales (send id n<id>) said apart.
    files = [path.name for path in (folder / "outbox").glob("*.eml")]
    to_sales = [name for name in files if name.rpartition("-")[2].startswith("n")]
    assert _emails_written(demo.stdout) == (len(files), len(to_sales)), demo.stdout
    to_contacts = int(demo.stdout.split("Emails sent: ", 1)[1].split()[0])
    assert len(files) - len(to_sales) == to_contacts > 0, demo.stdout

    # The commands it suggests, pasted as printed into a shell without the venv on PATH.
    shown = demo.stdout.split("Next, on the demo's data", 1)[1].splitlines()[1:]
    commands = [line.split("  # ", 1)[0].strip() for line in shown if line.strip()]
    assert commands[0] == "cd nurture-demo" and len(commands) == 5, commands
    followed = run("bash", "-c", " && ".join(commands), cwd=tmp_path, path=BARE_PATH)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    contact = commands[1].rsplit(" ", 1)[1]
    assert f"<{contact}>" in followed.stdout  # explain
    assert "Funnel" in followed.stdout and "flowchart" in followed.stdout  # report, graph

    # A second run replaces the first; a folder the demo did not write is never touched.
    again = run(str(NURTURE), "demo", "--contacts", "10", "--days", "5", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _emails_written(again.stdout)[0] == len(list((folder / "outbox").glob("*.eml")))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("à garder")
    refused = run(str(NURTURE), "demo", "--dir", "mine", cwd=tmp_path)
    assert refused.returncode == 1
    assert "not written by nurture demo" in refused.stderr
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_report_html_says_where_it_wrote_and_prints_no_tables(project: Path) -> None:
    imported = run(str(NURTURE), "contacts", "import", "examples/contacts.csv", cwd=project)
    assert imported.returncode == 0, imported.stdout + imported.stderr
    result = run(str(NURTURE), "report", "--html", "report.html", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == "✓ report written to report.html"
    assert "<svg" in (project / "report.html").read_text(encoding="utf-8")
