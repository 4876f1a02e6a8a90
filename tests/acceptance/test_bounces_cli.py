"""`nurture bounces read MAILDIR` end to end: a real process, exit codes, output.

The sends are real (the harness sends through the capture transport into
the project's SQLite database); the bounces quote their Message-IDs and
send ids as Postfix and a feedback loop would.
"""

from __future__ import annotations

import json
import mailbox
from pathlib import Path

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.store.db import create_engine_for, session_factory, upgrade
from nurture.testing import Harness, write_project
from tests.acceptance.test_cli import run
from tests.mail_reports import arf_complaint, postfix_bounce, unrelated_message

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
sending:
  from: "Exemple <bonjour@example.com>"
"""
LEAD = "name: lead-nurture\nenroll: {stage: lead}\nsteps:\n  - send: lead/welcome\n"
WELCOME = "---\nsubject: Bienvenue\n---\n<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour</mj-text></mj-column></mj-section></mj-body></mjml>\n"


def test_bounces_read_a_maildir(tmp_path: Path) -> None:
    root = write_project(tmp_path / "p", CONFIG, {"lead-nurture": LEAD}, {"lead/welcome": WELCOME})
    url = f"sqlite:///{root / 'nurture.sqlite3'}"
    upgrade(url)
    engine = create_engine_for(url)
    world = Harness(load_project(root), session_factory(engine))
    with clock.using(world.clock):
        world.import_csv("email,stage\nanne@example.org,lead\nbob@example.org,lead\n")
        world.import_csv("email,stage\ncarla@example.org,lead\n")
        world.run()
    engine.dispose()
    anne, bob, carla = (
        next(m for m in world.transport.messages if m.email.to == who)
        for who in ("anne@example.org", "bob@example.org", "carla@example.org")
    )
    box = mailbox.Maildir(root / "Maildir", create=True)
    box.add(postfix_bounce(message_id=anne.message_id, send_id=anne.send_id))
    box.add(arf_complaint(message_id=bob.message_id, send_id=bob.send_id, recipient=None))
    box.add(
        postfix_bounce(
            message_id=carla.message_id,
            send_id=carla.send_id,
            recipient="carla@example.org",
            action="delayed",
            status="4.4.1",
            report_id="<delay-1@mail.example.com>",
        )
    )
    box.add(unrelated_message())

    first = run("bounces", "read", "Maildir", cwd=root)
    assert first.returncode == 2, first.stdout + first.stderr
    lines = first.stdout.splitlines()
    assert lines[0].startswith("new/") and lines[0].endswith(": not a bounce or an abuse report")
    assert (
        "4 messages: 1 hard bounce, 1 soft bounce, 1 complaint recorded, "
        "0 already recorded, 1 not matched (left unseen)"
    ) in first.stdout

    def standing(email: str) -> tuple[object, int]:
        contact = json.loads(run("explain", email, "--json", cwd=root).stdout)["contact"]
        return contact["suppressed"], contact["soft_bounces"]

    assert standing("anne@example.org")[0] is not None
    assert standing("bob@example.org")[0] is not None
    assert standing("carla@example.org") == (None, 1)
    suppressed = run("suppressions", "list", "--json", cwd=root).stdout.splitlines()
    assert sorted((e["email"], e["reason"]) for e in map(json.loads, suppressed)) == [
        ("anne@example.org", "bounced"),
        ("bob@example.org", "complained"),
    ]

    # The same reports again (restored from a backup, say): nothing new.
    for key in list(box.keys()):
        message = box[key]
        message.set_flags("")
        message.set_subdir("new")
        box[key] = message
    second = run("bounces", "read", "Maildir", cwd=root)
    assert second.returncode == 2
    assert "4 messages: 0 hard bounces, 0 soft bounces, 0 complaints recorded, " in second.stdout
    assert "3 already recorded, 1 not matched" in second.stdout
    assert standing("carla@example.org") == (None, 1)

    box.remove(next(k for k in box.iterkeys() if "F" in box[k].get_flags()))
    assert run("bounces", "read", "Maildir", cwd=root).returncode == 0  # nothing left unseen

    missing = run("bounces", "read", "nowhere", cwd=root)
    assert missing.returncode == 1 and "not a Maildir" in missing.stderr
    neither = run("bounces", "read", cwd=root)
    assert neither.returncode == 1 and "give a MAILDIR folder or --imap" in neither.stderr
    no_imap = run("bounces", "read", "--imap", cwd=root)
    assert no_imap.returncode == 78 and "NURTURE_BOUNCES_IMAP_URL" in no_imap.stderr
