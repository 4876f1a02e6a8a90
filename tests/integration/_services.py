"""Helpers for the tests that run nurture as real processes against real services.

- `write_project`: a small nurture project (one workflow of sends and short waits);
- `write_contacts`: a CSV of contacts with accented first names;
- `Process`: a `nurture …` subprocess in its own process group, stopped for sure;
- `RedisDB`: one Redis database number, flushed before and after, and the
  machine's Redis server restarted like an operator would (`restart_server`);
- `ledger` / `received`: the send ledger and what the SMTP server accepted, in
  comparable form.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import redis
from sqlalchemy import select

from nurture.store.db import create_engine_for
from nurture.store.models import Contact, Send
from tests.smtp_server import ReceivedMessage

NURTURE = Path(sys.executable).with_name("nurture")
SEND_ID_HEADER = "X-Nurture-Send-Id"

FIRST_NAMES = ("Élodie", "Jérôme", "Anaïs", "François", "Zoé", "Loïc", "Cécile", "Noël")

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
sending:
  from: "Équipe Test <bonjour@example.com>"
  reply_to: ventes@example.com
"""

TEMPLATE = """\
---
subject: "{{{{ contact.first_name }}}} — étape {number}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{{{ contact.first_name }}}}, voici l'étape {number}.</mj-text>
<mj-text><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


def write_project(root: Path, waits: Sequence[str]) -> list[str]:
    """A project whose `onboarding` workflow sends len(waits) + 1 emails, `waits` apart.

    Returns the subject template of each email, in order, with `{name}` for the
    contact's first name.
    """
    (root / "workflows").mkdir(parents=True)
    (root / "templates" / "onboarding").mkdir(parents=True)
    (root / "nurture.yaml").write_text(CONFIG, encoding="utf-8")
    steps = []
    for number in range(1, len(waits) + 2):
        steps.append(f"  - id: step-{number}\n    send: onboarding/step-{number}\n")
        if number <= len(waits):
            steps.append(f"  - wait: {waits[number - 1]}\n")
        (root / "templates" / "onboarding" / f"step-{number}.mjml").write_text(
            TEMPLATE.format(number=number), encoding="utf-8"
        )
    (root / "workflows" / "onboarding.yaml").write_text(
        "name: onboarding\nenroll: {stage: lead}\nsteps:\n" + "".join(steps), encoding="utf-8"
    )
    return [f"{{name}} — étape {number}" for number in range(1, len(waits) + 2)]


def contact_email(index: int) -> str:
    return f"contact{index:04d}@example.com"


def first_name(index: int) -> str:
    return f"{FIRST_NAMES[index % len(FIRST_NAMES)]}{index}"


def write_contacts(path: Path, count: int) -> dict[str, str]:
    """A CSV of `count` leads; returns email → first name."""
    people = {contact_email(i): first_name(i) for i in range(count)}
    lines = ["email,first_name,company,stage"]
    lines += [f"{email},{name},Société {name},lead" for email, name in people.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return people


def clean_environment(**nurture: str) -> dict[str, str]:
    """This process's environment without any NURTURE_* variable, plus `nurture`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NURTURE_")}
    env["COLUMNS"] = "200"
    env["PYTHONUNBUFFERED"] = "1"
    return {**env, **nurture}


def nurture(
    *args: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run a short `nurture` command to completion; fail the test if it fails."""
    result = subprocess.run(
        [str(NURTURE), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"nurture {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


class Process:
    """A long-running `nurture …` in its own process group, its output in a log file."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.args = list(args)
        self.log = log
        self._handle = log.open("ab")
        self.popen = subprocess.Popen(
            [str(NURTURE), *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: signals reach its children too
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def children(self) -> list[int]:
        """Direct children (Dramatiq's worker processes), from /proc."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.pid:
                    found.append(int(entry.name))
        return sorted(found)

    def output(self) -> str:
        if not self._handle.closed:
            self._handle.flush()
        return self.log.read_text(encoding="utf-8", errors="replace")

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the leader (Dramatiq's main process passes it on to its workers),
        then SIGKILL whatever is left in the group; the leader's exit code."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        self.signal_group(signal.SIGKILL)  # stragglers in the group, even if the leader exited
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(5)
        self._handle.close()
        return self.popen.returncode


@contextlib.contextmanager
def processes() -> Iterator[Callable[..., Process]]:
    """Start `Process`es with the returned function; every one is stopped on exit."""
    started: list[Process] = []

    def start(*args: str, env: dict[str, str], cwd: Path, log: Path) -> Process:
        process = Process(args, env=env, cwd=cwd, log=log)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()


# --- Redis -------------------------------------------------------------------------

REDIS_PORT = 6379


def redis_start_command() -> list[str]:
    """How CI starts the machine's Redis (no persistence); /tmp where its folders are missing."""
    data = Path("/var/lib/redis")
    logs = Path("/var/log/redis")
    return [
        "redis-server",
        "--daemonize",
        "yes",
        "--bind",
        "127.0.0.1",
        "-::1",
        "--port",
        str(REDIS_PORT),
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data if os.access(data, os.W_OK) else tempfile.gettempdir()),
        "--logfile",
        str(logs / "ci.log") if os.access(logs, os.W_OK) else "",
    ]


def can_restart_redis() -> bool:
    """Whether this machine's Redis can be stopped and started from here."""
    return bool(shutil.which("redis-server") and shutil.which("redis-cli"))


class RedisDB:
    """One database number on the machine's Redis server (127.0.0.1:6379)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.url = f"redis://127.0.0.1:{REDIS_PORT}/{number}"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, socket_timeout=2, socket_connect_timeout=2)

    def alive(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def flush(self) -> None:
        with self.client() as client:
            client.flushdb()

    def stop_server(self) -> None:
        """`SHUTDOWN NOSAVE`: every queued message is gone, as in a crash."""
        subprocess.run(
            ["redis-cli", "-p", str(REDIS_PORT), "shutdown", "nosave"],
            capture_output=True,
            timeout=10,
        )
        deadline = time.monotonic() + 10
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not self.alive(), "Redis did not stop"

    def start_server(self, timeout: float = 15.0) -> None:
        """Start the server if it does not answer, and wait until it answers PING."""
        deadline = time.monotonic() + timeout
        while not self.alive():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run(redis_start_command(), capture_output=True, timeout=10)
            if time.monotonic() > deadline:
                raise AssertionError("Redis did not come back (redis-server --daemonize)")
            for _ in range(20):
                if self.alive():
                    break
                time.sleep(0.1)


@contextlib.contextmanager
def redis_db(number: int) -> Iterator[RedisDB]:
    """A flushed Redis database; flushed again after, and the server left running."""
    db = RedisDB(number)
    if not db.alive():
        reason = f"Redis is not reachable on 127.0.0.1:{REDIS_PORT}"
        if os.environ.get("CI"):
            raise AssertionError(reason)
        import pytest

        pytest.skip(reason)
    db.flush()
    try:
        yield db
    finally:
        db.start_server()  # a test that stopped it, or failed mid-restart
        db.flush()


# --- what was recorded, what was received ---------------------------------------------


@dataclass(frozen=True)
class LedgerRow:
    id: int
    email: str
    step: str | None
    status: str
    subject: str | None
    message_id: str | None
    attempts: int
    claimed_at: datetime
    sent_at: datetime | None


def ledger(database_url: str) -> list[LedgerRow]:
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                select(
                    Send.id,
                    Contact.email,
                    Send.step,
                    Send.status,
                    Send.subject,
                    Send.message_id,
                    Send.attempts,
                    Send.claimed_at,
                    Send.sent_at,
                )
                .join(Contact, Contact.id == Send.contact_id)
                .order_by(Send.id)
            )
            return [LedgerRow(*row) for row in rows]
    finally:
        engine.dispose()


@dataclass(frozen=True)
class Received:
    to: str
    subject: str
    send_id: int
    message_id: str
    date: str


def received(messages: Sequence[ReceivedMessage]) -> list[Received]:
    """The messages the SMTP server accepted, parsed, in the order it accepted them."""
    found = []
    for message in messages:
        parsed = message.parsed()
        [recipient] = message.recipients
        found.append(
            Received(
                recipient,
                str(parsed["Subject"]),
                int(str(parsed[SEND_ID_HEADER])),
                str(parsed["Message-ID"]),
                str(parsed["Date"]),
            )
        )
    return found


def by_recipient(messages: Sequence[Received]) -> dict[str, list[Received]]:
    found: dict[str, list[Received]] = {}
    for message in messages:
        found.setdefault(message.to, []).append(message)
    return found


# --- a deployment: project, database, Redis, SMTP, processes ------------------------------


@dataclass
class Deployment:
    """A nurture project wired to PostgreSQL, Redis and an SMTP server, contacts imported."""

    root: Path
    env: dict[str, str]
    database_url: str
    people: dict[str, str]  # email → first name
    subjects: list[str]  # with {name}

    @classmethod
    def create(
        cls,
        root: Path,
        *,
        database_url: str,
        redis_url: str,
        smtp_url: str,
        contacts: int,
        waits: Sequence[str],
        lease_seconds: float,
    ) -> Deployment:
        project = root / "project"
        subjects = write_project(project, waits)
        env = clean_environment(
            NURTURE_DATABASE_URL=database_url,
            NURTURE_REDIS_URL=redis_url,
            NURTURE_SMTP_URL=smtp_url,
            NURTURE_SECRET_KEY="integration-test-secret-key",
            NURTURE_PROJECT_DIR=str(project),
            NURTURE_LEASE_SECONDS=str(lease_seconds),
        )
        nurture("db", "upgrade", env=env, cwd=root)
        people = write_contacts(root / "contacts.csv", contacts)
        imported = nurture("contacts", "import", str(root / "contacts.csv"), env=env, cwd=root)
        assert f"{contacts} created" in imported.stdout, imported.stdout
        return cls(root, env, database_url, people, subjects)

    def expected(self, email: str) -> list[str]:
        return [subject.format(name=self.people[email]) for subject in self.subjects]

    @property
    def total(self) -> int:
        return len(self.people) * len(self.subjects)

    def start(self, start: Callable[..., Process], *args: str) -> Process:
        log = self.root / f"{args[0]}-{time.monotonic_ns()}.log"
        return start(*args, env=self.env, cwd=self.root, log=log)

    def wait_until_done(
        self,
        count_received: Callable[[], int],
        alive: Sequence[Process],
        timeout: float,
    ) -> float:
        """Poll until every email arrived and the ledger holds no pending send; seconds taken.

        Fails at once, with its output, if one of `alive` exits.
        """
        began = time.monotonic()
        while True:
            for process in alive:
                if process.popen.poll() is not None:
                    raise AssertionError(
                        f"nurture {' '.join(process.args)} exited with "
                        f"{process.popen.returncode}:\n{process.output()[-5000:]}"
                    )
            if count_received() >= self.total:
                rows = ledger(self.database_url)
                if len(rows) == self.total and all(row.status != "claimed" for row in rows):
                    return time.monotonic() - began
            if time.monotonic() - began > timeout:
                rows = ledger(self.database_url)
                statuses: dict[str, int] = {}
                for row in rows:
                    statuses[row.status] = statuses.get(row.status, 0) + 1
                logs = "\n".join(f"--- {p.args[0]}\n{p.output()[-3000:]}" for p in alive)
                raise AssertionError(
                    f"after {timeout:.0f}s: {count_received()} of {self.total} emails received; "
                    f"ledger {statuses}\n{logs}"
                )
            time.sleep(0.2)


def check_exactly_once(
    deployment: Deployment, messages: Sequence[Received], unordered: Collection[str] = ()
) -> None:
    """Every contact got each of its emails exactly once, in order, and the ledger agrees.

    For the contacts in `unordered` the order is not checked: only that each of
    their emails arrived exactly once.
    """
    rows = {row.id: row for row in ledger(deployment.database_url)}
    sent = {row_id: row for row_id, row in rows.items() if row.status == "sent"}
    assert {row.status for row in rows.values()} == {"sent"}, "every send ends sent"

    # No email lost, none duplicated, in order: per contact, exactly the expected subjects.
    inbox = by_recipient(messages)
    assert set(inbox) == set(deployment.people)
    wrong = {
        email: subjects
        for email, got in inbox.items()
        if (subjects := [m.subject for m in got]) != deployment.expected(email)
        and (email not in unordered or sorted(subjects) != sorted(deployment.expected(email)))
    }
    assert not wrong, (
        f"{len(wrong)} contacts got the wrong emails, e.g. {next(iter(wrong.items()))}"
    )

    # The ledger and the SMTP server tell the same story, message for message.
    assert len({m.message_id for m in messages}) == len(messages), "Message-IDs are unique"
    assert len({m.send_id for m in messages}) == len(messages), "one message per send row"
    assert len(sent) == len(messages) == deployment.total
    for message in messages:
        row = sent.get(message.send_id)
        assert row is not None, f"{message} has no 'sent' row in the ledger"
        assert (row.email, row.subject, row.message_id) == (
            message.to,
            message.subject,
            message.message_id,
        )
