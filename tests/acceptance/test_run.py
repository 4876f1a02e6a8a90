"""`nurture run`: the embedded mode, with no configuration at all.

A project folder, a contacts file, and two commands: `nurture contacts import`
then `nurture run`. No NURTURE_* variable is set: the database is a SQLite file
in the working folder, Dramatiq's in-process broker carries the work between
the scheduler and worker threads of the one process, and emails land in
`./outbox` as `.eml` files. Ctrl-C stops it cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import time
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import IO

from tests.integration._services import (
    NURTURE,
    clean_environment,
    nurture,
    write_contacts,
    write_project,
)

CONTACTS = 5
WAITS = ("1s", "2s")


def test_run_sends_every_email_to_the_outbox_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    project = tmp_path / "campaigns"
    subjects = write_project(project, WAITS)
    people = write_contacts(project / "contacts.csv", CONTACTS)
    env = clean_environment()  # nothing configured: everything embedded
    nurture("contacts", "import", "contacts.csv", env=env, cwd=project)

    outbox = project / "outbox"
    expected = CONTACTS * len(subjects)
    with (tmp_path / "run.log").open("w+b") as log:
        process = subprocess.Popen(
            # --port 0: the web app `run` also serves takes any free port, not a busy 8000.
            [str(NURTURE), "run", "--interval", "0.2", "--port", "0"],
            cwd=project,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while _count(outbox) < expected:
                assert process.poll() is None, _output(log)
                assert time.monotonic() < deadline, (
                    f"{_count(outbox)} of {expected}\n{_output(log)}"
                )
                time.sleep(0.1)
            time.sleep(0.5)  # anything sent twice would show up now
            process.send_signal(signal.SIGINT)  # Ctrl-C
            stopping = time.monotonic()
            code = process.wait(timeout=10)
            stopped_in = time.monotonic() - stopping
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        output = _output(log)
        everything = _output(log, last=None)
    assert code == 0, output
    assert stopped_in < 5, f"took {stopped_in:.1f}s to stop"
    assert "Traceback" not in output, output

    # Every contact got its emails, each once, in order (file names sort by sending time).
    files = sorted(outbox.glob("*.eml"))
    assert len(files) == expected, [f.name for f in files]
    assert not list(outbox.glob(".*.tmp")), "no half-written file left behind"
    inbox: dict[str, list[EmailMessage]] = {}
    for path in files:
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert isinstance(message, EmailMessage)
        inbox.setdefault(str(message["To"]), []).append(message)
    assert set(inbox) == set(people)
    for email, name in people.items():
        got = [str(m["Subject"]) for m in inbox[email]]
        assert got == [subject.format(name=name) for subject in subjects], email
    message = inbox["contact0001@example.com"][0]
    assert message["From"] == "Équipe Test <bonjour@example.com>"
    assert message["X-Nurture-Send-Id"]
    body = message.get_body(("plain",))
    assert body is not None and "voici l'étape 1" in body.get_content()
    assert len({str(m["Message-ID"]) for ms in inbox.values() for m in ms}) == expected

    # Embedded means embedded: the database and the signing key sit in the project folder.
    assert (project / "nurture.sqlite3").exists()
    assert (project / ".nurture-secret").exists()

    # The log says each email that left, by send id, workflow, step and template, and
    # nobody's address or name; the scheduler's counts say what it dispatched, not sends.
    sent_lines = [line for line in everything.splitlines() if "email sent: send " in line]
    assert len(sent_lines) == expected, everything
    for number in range(1, len(subjects) + 1):
        step = f"onboarding/step-{number}, template onboarding/step-{number}"
        assert sum(step in line for line in sent_lines) == CONTACTS, everything
    for email, name in people.items():
        assert email not in everything and name not in everything, everything
    assert "dispatched to the workers:" in everything, everything
    assert " sends," not in everything, everything


def test_run_refuses_a_broken_project_before_saying_it_runs(tmp_path: Path) -> None:
    project = tmp_path / "campaigns"
    write_project(project, WAITS)
    workflow = project / "workflows" / "onboarding.yaml"
    workflow.write_text(workflow.read_text().replace("wait: 1s", "wait: 1 seconde"))
    result = subprocess.run(
        [str(NURTURE), "run", "--port", "0"],
        cwd=project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "workflows/onboarding.yaml:" in result.stdout
    assert "running" not in result.stdout + result.stderr


def _count(outbox: Path) -> int:
    return len(list(outbox.glob("*.eml")))


def _output(log: IO[bytes], last: int | None = 5000) -> str:
    log.seek(0)
    text = log.read().decode("utf-8", errors="replace")
    return text[-last:] if last else text
