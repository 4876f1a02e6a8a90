"""Bounces and complaints read from a Maildir (and an IMAP stand-in) against real sends.

The harness sends through the capture transport, so every report below
quotes a real Message-ID and send id, as the MTA would return them.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.delivery.mailboxes import Imap, Maildir
from nurture.errors import ConfigurationError, NurtureError
from nurture.lifecycle.bounce_reports import BounceReading, read_bounces
from nurture.store.models import Event
from nurture.testing import Harness, write_project
from nurture.transports.capture import CapturedEmail
from tests.mail_reports import arf_complaint, postfix_bounce, unrelated_message

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
sending:
  from: "Exemple <bonjour@example.com>"
  return_path: bounces+{send_id}@example.com
  soft_bounce_limit: 2
"""
LEAD = "name: lead-nurture\nenroll: {stage: lead}\nsteps:\n  - send: lead/welcome\n"
WELCOME = "---\nsubject: Bienvenue\n---\n<mjml><mj-body><mj-section><mj-column><mj-text>Bonjour</mj-text></mj-column></mj-section></mj-body></mjml>\n"
PEOPLE = ("anne@example.org", "bob@example.org", "carla@example.org", "dan@example.org")


@pytest.fixture
def world(tmp_path: Path, sessions: sessionmaker[Session]) -> Iterator[Harness]:
    root = write_project(tmp_path / "p", CONFIG, {"lead-nurture": LEAD}, {"lead/welcome": WELCOME})
    h = Harness(load_project(root), sessions)
    with clock.using(h.clock):
        h.import_csv("email,stage\n" + "".join(f"{p},lead\n" for p in PEOPLE))
        h.run()
        yield h


def sent(world: Harness, to: str) -> CapturedEmail:
    [message] = [m for m in world.transport.messages if m.email.to == to]
    return message


def maildir(tmp_path: Path, *messages: bytes) -> Path:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path, create=True)
    for data in messages:
        box.add(data)
    return path


def read(world: Harness, path: Path, **options: object) -> BounceReading:
    return read_bounces(
        world.ingestor,
        world.sessions,
        Maildir(path, delete=bool(options.pop("delete", False))),
        label="Maildir",
        return_path=world.engine.project.config.sending.return_path,
        **options,  # type: ignore[arg-type]
    )


def events(world: Harness) -> list[tuple[str, str, str | None]]:
    with world.sessions() as session:
        rows = session.scalars(
            sa.select(Event).where(Event.type.in_(["email.bounced", "email.complained"]))
        )
        return sorted((e.event_id, e.type, (e.properties or {}).get("bounce")) for e in rows)


def test_the_envelope_sender_of_each_email_names_its_send(world: Harness) -> None:
    anne = sent(world, "anne@example.org")
    assert anne.envelope_from == f"bounces+{anne.send_id}@example.com"


def test_a_dsn_and_an_arf_report_suppress_the_right_contacts(
    world: Harness, tmp_path: Path
) -> None:
    anne, bob, carla = (sent(world, p) for p in PEOPLE[:3])
    path = maildir(
        tmp_path,
        postfix_bounce(message_id=anne.message_id, send_id=anne.send_id),
        arf_complaint(message_id=bob.message_id, send_id=bob.send_id, recipient=None),
        postfix_bounce(
            message_id=carla.message_id,
            send_id=carla.send_id,
            recipient="carla@example.org",
            action="delayed",
            status="4.4.1",
            report_id="<delay-1@mail.example.com>",
        ),
        unrelated_message(),
    )
    reading = read(world, path)
    assert (reading.read, reading.hard, reading.complaints, reading.soft) == (4, 1, 1, 1)
    assert reading.duplicate == 0
    [problem] = reading.problems
    assert problem.file.startswith("new/")
    assert problem.message == "not a bounce or an abuse report"

    assert world.contact("anne@example.org").suppression_reason == "bounced"
    assert world.contact("bob@example.org").suppression_reason == "complained"
    carla_now = world.contact("carla@example.org")
    assert carla_now.suppression_reason is None and carla_now.soft_bounces == 1
    assert world.contact("dan@example.org").suppression_reason is None
    assert events(world) == [
        ("arf:<arf-20261123-8f3a@fbl.example.net>", "email.complained", None),
        (f"dsn-soft:{carla.send_id}", "email.bounced", "soft"),
        ("dsn:<20261123090211.4F2A31C0042@mail.example.com>", "email.bounced", "hard"),
    ]
    with world.sessions() as session:
        hard = session.scalars(sa.select(Event).where(Event.type == "email.bounced")).all()
    properties = next(e.properties for e in hard if e.properties["bounce"] == "hard")
    assert properties["send_id"] == int(anne.send_id)
    assert properties["workflow"] == "lead-nurture" and properties["template"] == "lead/welcome"
    assert properties["code"] == "5.1.1" and properties["provider"] == "mailbox"

    # Dealt with: seen, in cur/. The unrelated message: kept unseen and flagged.
    box = mailbox.Maildir(path, create=False)
    flags = sorted(box[key].get_flags() for key in box.iterkeys())
    assert flags == ["F", "S", "S", "S"]
    assert not list((path / "new").iterdir())

    # Reading again: only the unrelated message is unseen, and it is listed again.
    again = read(world, path)
    assert (again.read, again.recorded, len(again.problems)) == (1, 0, 1)
    assert len(events(world)) == 3


def test_the_same_reports_again_record_nothing_new(world: Harness, tmp_path: Path) -> None:
    anne, carla = sent(world, "anne@example.org"), sent(world, "carla@example.org")
    hard = postfix_bounce(message_id=anne.message_id, send_id=anne.send_id)
    delay = postfix_bounce(
        message_id=carla.message_id,
        send_id=carla.send_id,
        recipient="carla@example.org",
        action="delayed",
        status="4.4.1",
        report_id="<delay-1@mail.example.com>",
    )
    # A second delay warning about the same email, in the same run: one soft bounce.
    later_delay = delay.replace(b"<delay-1@", b"<delay-2@")
    path = maildir(tmp_path, hard, delay, later_delay)
    first = read(world, path)
    assert (first.hard, first.soft, first.duplicate, first.problems) == (1, 1, 1, [])
    # The same messages delivered again (or a mailbox restored from a backup).
    maildir(tmp_path, hard, delay, later_delay)
    second = read(world, path, batch_size=1)
    assert (second.read, second.recorded, second.duplicate, second.problems) == (3, 0, 3, [])
    assert len(events(world)) == 2
    assert world.contact("carla@example.org").soft_bounces == 1


def test_a_bounce_without_the_original_matches_by_its_verp_address(
    world: Harness, tmp_path: Path
) -> None:
    dan = sent(world, "dan@example.org")
    bounce = postfix_bounce(
        message_id=None,
        send_id=None,
        recipient="dan@example.org",
        envelope=dan.envelope_from,
        report_id="<verp-1@mail.example.com>",
    )
    reading = read(world, maildir(tmp_path, bounce))
    assert (reading.hard, reading.problems) == (1, [])
    assert world.contact("dan@example.org").suppression_reason == "bounced"


def test_a_forged_bounce_naming_a_send_id_alone_suppresses_nobody(
    world: Harness, tmp_path: Path
) -> None:
    anne, bob = sent(world, "anne@example.org"), sent(world, "bob@example.org")
    forged_verp = postfix_bounce(
        message_id=None,
        send_id=None,
        recipient="someone@else.example",  # not the recipient of bob's email
        envelope=bob.envelope_from,
        report_id="<forged-1@evil.example>",
    )
    wrong_pair = postfix_bounce(
        message_id=anne.message_id,  # anne's email, yet naming bob's send
        send_id=bob.send_id,
        report_id="<forged-2@evil.example>",
    )
    unknown = postfix_bounce(
        message_id="<not-ours@elsewhere.example>", send_id=None, report_id="<x@mx.example>"
    )
    reading = read(world, maildir(tmp_path, forged_verp, wrong_pair, unknown))
    assert reading.recorded == 0
    reasons = sorted(p.message for p in reading.problems)
    assert reasons == sorted(
        [
            f"names send {bob.send_id} by its id alone, without that email's recipient "
            "(an id is easy to guess: the recipient must agree)",
            f"the returned Message-ID {anne.message_id} is send {anne.send_id}'s, "
            f"but the report names send {bob.send_id}",
            "the returned Message-ID <not-ours@elsewhere.example> is not one of our emails",
        ]
    )
    assert world.contact("anne@example.org").suppression_reason is None
    assert world.contact("bob@example.org").suppression_reason is None


def test_delete_removes_the_messages_dealt_with_only(world: Harness, tmp_path: Path) -> None:
    anne = sent(world, "anne@example.org")
    path = maildir(
        tmp_path,
        postfix_bounce(message_id=anne.message_id, send_id=anne.send_id),
        unrelated_message(),
    )
    reading = read(world, path, delete=True)
    assert (reading.hard, len(reading.problems)) == (1, 1)
    assert len(list((path / "cur").iterdir())) == 1  # the unrelated one, flagged
    assert not list((path / "new").iterdir())


def test_a_folder_that_is_not_a_maildir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(NurtureError, match="not a Maildir"):
        Maildir(tmp_path)


class FakeImap:
    """What `Imap` asks of imaplib's client, over a dict of messages (uid → bytes, flags)."""

    def __init__(self, messages: dict[int, bytes]) -> None:
        self.messages = messages
        self.flags: dict[int, set[str]] = {uid: set() for uid in messages}
        self.calls: list[str] = []

    def login(self, user: str, password: str) -> tuple[str, list[bytes]]:
        self.calls.append(f"login {user} {password}")
        return "OK", [b"ok"]

    def select(self, folder: str) -> tuple[str, list[bytes]]:
        self.calls.append(f"select {folder}")
        return "OK", [str(len(self.messages)).encode()]

    def uid(self, command: str, *args: str) -> tuple[str, list[object]]:
        self.calls.append(" ".join((command, *args)))
        if command == "SEARCH":
            unseen = [str(u).encode() for u in self.messages if "\\Seen" not in self.flags[u]]
            return "OK", [b" ".join(unseen)]
        if command == "FETCH":
            uid = int(args[0])
            return "OK", [(f"{uid} (UID {uid} BODY[] {{1}}".encode(), self.messages[uid]), b")"]
        if command == "STORE":
            self.flags[int(args[0])].add(args[2].strip("()"))
            return "OK", []
        raise AssertionError(command)

    def expunge(self) -> tuple[str, list[bytes]]:
        self.calls.append("EXPUNGE")
        return "OK", []

    def logout(self) -> tuple[str, list[bytes]]:
        self.calls.append("LOGOUT")
        return "BYE", []


def test_imap_reads_unseen_messages_and_marks_them(world: Harness) -> None:
    anne = sent(world, "anne@example.org")
    fake = FakeImap(
        {
            7: postfix_bounce(message_id=anne.message_id, send_id=anne.send_id),
            8: unrelated_message(),
        }
    )
    connected: list[tuple[str, int, bool]] = []

    def connect(host: str, port: int, tls: bool) -> FakeImap:
        connected.append((host, port, tls))
        return fake

    box = Imap(
        "imaps://bounces%40example.com:s%3Acret@imap.example.com/Bounces",
        connect=connect,  # type: ignore[arg-type]
    )
    try:
        reading = read_bounces(world.ingestor, world.sessions, box, label="imap:Bounces")
    finally:
        box.close()
    assert connected == [("imap.example.com", 993, True)]
    assert fake.calls[:2] == ["login bounces@example.com s:cret", 'select "Bounces"']
    assert "FETCH 7 (BODY.PEEK[])" in fake.calls  # PEEK: reading sets no flag
    assert (reading.hard, [p.file for p in reading.problems]) == (1, ["uid 8"])
    assert fake.flags == {7: {"\\Seen"}, 8: {"\\Flagged"}}
    assert fake.calls[-1] == "LOGOUT"
    assert world.contact("anne@example.org").suppression_reason == "bounced"


def test_a_bad_imap_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="NURTURE_BOUNCES_IMAP_URL"):
        Imap("https://imap.example.com/")
    with pytest.raises(ConfigurationError, match="a user and a password"):
        Imap("imaps://imap.example.com/")
