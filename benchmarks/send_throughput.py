"""Send throughput: N due enrollments → emails out, on PostgreSQL (and Redis for Dramatiq).

Usage: ``python benchmarks/send_throughput.py [-n 10000] [--batch-size 200]
[--skip-smtp] [--skip-dramatiq] [--dramatiq-threads 4]``

Builds a one-workflow project in a temporary folder (``enroll: {stage: lead}``,
``send: x/hello``, ``wait: 30d``; a realistic MJML email with a layout and a
few contact fields), creates a throwaway PostgreSQL database (dropped at the
end, even on failure), migrates it with `nurture.store.db.upgrade` and loads N
contacts with one due enrollment each (COPY). Then, each in a fresh process so
that its peak RSS is its own:

- **render only**: the same template rendered for the same N contacts, in a
  loop: the ceiling a worker process cannot beat;
- **inline, capture**: one "worker process" running `Engine.claim_due` +
  `Engine.advance(ids, deliver=True)` over batches until nothing is due, with
  the capture transport (the message bytes are built, then dropped);
- **inline, SMTP sink**: the same with `SMTPTransport` to an aiosmtpd sink
  on 127.0.0.1 running in its own process;
- **dramatiq**: the real path: `Scheduler.run` in one process dispatching to
  Redis (a dedicated, flushed database), one Dramatiq worker process with
  `--dramatiq-threads` threads running the actors, capture transport;
- **nurture worker defaults**: the same with `nurture worker`'s default
  processes and threads (the figure set against the inline rate: ≥ 90 %).

Between runs the enrollments are made due again and the sends deleted
(VACUUM ANALYZE, CHECKPOINT). The inline runs are instrumented from the
outside (functions wrapped with timers) for a per-stage breakdown: claim,
load, state writes, render, MIME, ledger, outcome records, transport, commit,
other.
Numbers are for one machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import random
import resource
import shutil
import socket
import tempfile
import time
import traceback
from collections import defaultdict
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from _db import temporary_database  # benchmarks/ is on sys.path when run

from nurture.store.workflows import workflow_version_id

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/14"
SECRET = "benchmark-secret-key-0123456789"
BASE_URL = "https://nurture.example.com"
TEMPLATE = "x/hello"

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
properties:
  industry: string
  company_size: number
sending:
  from: "Équipe Exemple <bonjour@example.com>"
  reply_to: ventes@example.com
"""

WORKFLOW = """\
name: hello
enroll: {stage: lead}
steps:
  - send: x/hello
  - wait: 30d
"""

LAYOUT = """\
<mjml lang="fr">
  <mj-head>
    <mj-title>Exemple</mj-title>
    <mj-preview>{{ preheader }}</mj-preview>
    <mj-attributes>
      <mj-all font-family="'Helvetica Neue', Helvetica, Arial, sans-serif" />
      <mj-text font-size="16px" line-height="1.6" color="#1f2933" padding="8px 24px" />
      <mj-button background-color="#1b5e9e" color="#ffffff" font-size="16px" font-weight="bold" border-radius="6px" inner-padding="12px 28px" padding="16px 24px" align="left" />
      <mj-class name="muted" font-size="13px" line-height="1.5" color="#616e7c" />
    </mj-attributes>
    <mj-style>
      a { color: #1b5e9e; }
      .footer a { color: #616e7c; }
    </mj-style>
  </mj-head>
  <mj-body background-color="#f3f5f7" width="600px">
    <mj-section padding="12px 0 4px">
      <mj-column>
        <mj-text mj-class="muted" align="right" padding="0 24px">
          <a href="{{ view_in_browser_url }}">Voir dans le navigateur</a>
        </mj-text>
      </mj-column>
    </mj-section>
    <mj-section background-color="#1b5e9e" padding="18px 0" border-radius="8px 8px 0 0">
      <mj-column>
        <mj-text font-size="24px" font-weight="bold" color="#ffffff" line-height="1.2">Exemple</mj-text>
      </mj-column>
    </mj-section>
    <mj-wrapper background-color="#ffffff" padding="16px 0 24px" border-radius="0 0 8px 8px">
{% block content %}{% endblock %}
    </mj-wrapper>
    <mj-section padding="16px 0 32px">
      <mj-column>
        <mj-text mj-class="muted" css-class="footer" align="center">
          Exemple SAS · 12 rue des Lilas · 69003 Lyon · France<br />
          <a href="{{ unsubscribe_url }}">Se désabonner</a> ·
          <a href="https://example.com/confidentialite">Politique de confidentialité</a>
        </mj-text>
      </mj-column>
    </mj-section>
  </mj-body>
</mjml>
"""

EMAIL = """\
---
subject: "{{ contact.first_name }}, une grille de scoring pour {{ contact.company }}"
preheader: "Le guide pas à pas, avec un modèle prêt à remplir."
---
{% extends "_layouts/base.mjml" %}
{% block content %}
<mj-section>
  <mj-column>
    <mj-text>Bonjour{% if contact.first_name %} {{ contact.first_name }}{% endif %},</mj-text>
    <mj-text>Les équipes de {{ contact.company }} qui travaillent dans {{ contact.industry or "votre secteur" }} nous posent souvent la même question : comment savoir quels leads appeler en premier ? Une grille de scoring y répond, et sa première version tient en une demi-heure.</mj-text>
    <mj-text padding="0 24px 0 40px">
      <strong>1. Listez vos signaux</strong> : page tarifs, téléchargements, webinars.<br />
      <strong>2. Pondérez-les</strong> : peu pour une ouverture, beaucoup pour un rendez-vous.<br />
      <strong>3. Ajoutez le profil</strong>{% if contact.company_size %} (pour {{ contact.company_size | int }} personnes){% endif %} : fonction, budget identifié.
    </mj-text>
    <mj-button href="https://example.com/guides/grille-de-scoring?utm_source=nurture">Accéder au guide</mj-button>
    <mj-text>Bien à vous,<br />Julie Bernard, Exemple</mj-text>
  </mj-column>
</mj-section>
{% endblock %}
"""

FIRST_NAMES = ("Anne", "Benoît", "Chloé", "Élodie", "François", "Gaëlle", "Hugo", "Inès")
INDUSTRIES = ("industrie", "logistique", "santé", "banque", "retail", None)


def write_project(root: Path) -> None:
    (root / "workflows").mkdir(parents=True)
    (root / "templates" / "_layouts").mkdir(parents=True)
    (root / "templates" / "x").mkdir(parents=True)
    (root / "nurture.yaml").write_text(CONFIG, encoding="utf-8")
    (root / "workflows" / "hello.yaml").write_text(WORKFLOW, encoding="utf-8")
    (root / "templates" / "_layouts" / "base.mjml").write_text(LAYOUT, encoding="utf-8")
    (root / "templates" / "x" / "hello.mjml").write_text(EMAIL, encoding="utf-8")


# --- the database -----------------------------------------------------------------


def load(url: str, project_dir: Path, count: int) -> None:
    """N lead contacts (COPY), each with one enrollment due now."""
    from nurture.definitions.loader import load_project
    from nurture.store.db import create_engine_for, session_factory

    workflow = load_project(project_dir).workflows["hello"]
    engine = create_engine_for(url)
    try:
        with session_factory(engine).begin() as session:
            version = workflow_version_id(
                session, workflow.name, workflow.content_hash, workflow.source
            )
    finally:
        engine.dispose()
    rng = random.Random(7)
    now = datetime.now(UTC)
    with psycopg.connect(url) as connection:
        with connection.cursor().copy(
            "COPY contacts (email, first_name, last_name, company, stage, score, "
            "consent_status, properties, tags, created_at, updated_at) FROM STDIN"
        ) as copy:
            for n in range(count):
                industry = rng.choice(INDUSTRIES)
                properties = (
                    f'{{"industry": "{industry}", "company_size": {rng.randint(5, 900)}}}'
                    if industry
                    else "{}"
                )
                copy.write_row(
                    (
                        f"contact{n}@example{n % 97}.com",
                        FIRST_NAMES[n % len(FIRST_NAMES)],
                        f"Nom{n}",
                        f"Société {n % 5000}",
                        "lead",
                        0.0,
                        "granted",
                        properties,
                        "[]",
                        now,
                        now,
                    )
                )
        connection.execute(
            "INSERT INTO enrollments (contact_id, workflow, workflow_version_id, visit, status,"
            " next_run_at, started_at) SELECT id, 'hello', %s, 0, 'active', %s, %s FROM contacts",
            (version, now - timedelta(seconds=1), now),
        )
    settle(url)


def reset(url: str) -> None:
    """Every enrollment due again, no sends: the next run starts where the first did."""
    with psycopg.connect(url) as connection:
        connection.execute("DELETE FROM sends")
        connection.execute(
            "UPDATE enrollments SET step = NULL, visit = 0, status = 'active', waiting_for = NULL,"
            " next_run_at = now() - interval '1 second', lease_until = NULL, ended_at = NULL,"
            " exit_reason = NULL"
        )
    settle(url)


def settle(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE contacts, enrollments, sends")
        connection.execute("CHECKPOINT")


def outcome(url: str) -> dict[str, int]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT status, count(*) FROM sends GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def _sent(connection: Any) -> int:
    row = connection.execute("SELECT count(*) FROM sends WHERE status = 'sent'").fetchone()
    return int(row[0]) if row else 0


# --- inside the measured processes ------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def discarding_capture() -> Any:
    """The capture transport, keeping a count instead of every message (RSS stays honest)."""
    from nurture.transports import BuiltMessage, CaptureTransport
    from nurture.transports.message import OutgoingEmail

    class DiscardingCapture(CaptureTransport):
        delivered = 0

        def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
            super()._deliver(message, email)
            with self._lock:
                self._messages.clear()
                self.delivered += 1

    return DiscardingCapture()


STAGES = (
    "claim",
    "load",
    "state",
    "render",
    "MIME",
    "ledger",
    "outcome",
    "transport",
    "commit",
)
LOAD = (
    "load_enrollments",
    "contacts_by_id",
    "events_since",
    "recent_send_times",
    "pending_sends",
    "load_sends",
    "contact_standing",
    "enrollment_endings",
)
OUTCOME = ("PipelinedOutcomeLog.record", "PipelinedOutcomeLog.ready", "InlineOutcomeLog.record")
LEDGER = ("claim_sends", "lease_sends", "renew_send_leases", "finish_sends")


def instrument(transport: Any) -> dict[str, float]:
    """Wrap the send path's functions with timers; returns the stage → seconds totals."""
    from sqlalchemy.orm.session import SessionTransaction

    from nurture.rendering import TemplateLibrary
    from nurture.store import contacts, outcomes
    from nurture.store import enrollments as work
    from nurture.store import events as event_store
    from nurture.store import sends as ledger
    from nurture.transports import base

    totals: dict[str, float] = defaultdict(float)

    def wrap(owner: Any, name: str, stage: str) -> None:
        original: Callable[..., Any] | None = getattr(owner, name, None)
        if original is None:  # renamed or gone: its time shows under "other"
            print(f"(instrumentation: no {getattr(owner, '__name__', owner)}.{name})")
            return

        @functools.wraps(original)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                totals[stage] += time.perf_counter() - started

        setattr(owner, name, timed)

    wrap(work, "claim_due_enrollments", "claim")
    for name in LOAD:
        owners = (work, ledger, contacts, event_store)
        wrap(next((o for o in owners if hasattr(o, name)), work), name, "load")
    wrap(work, "save_enrollments", "state")
    for name in LEDGER:
        wrap(ledger, name, "ledger")
    for qualified in OUTCOME:
        owner, name = qualified.split(".")
        wrap(getattr(outcomes, owner), name, "outcome")
    wrap(TemplateLibrary, "render", "render")
    wrap(base, "build_message", "MIME")
    wrap(type(transport), "_deliver", "transport")
    wrap(SessionTransaction, "commit", "commit")
    return totals


def build_engine(url: str, project_dir: Path, transport: Any, batch_size: int) -> Any:
    from nurture.definitions.loader import load_project
    from nurture.engine.runtime import settle_heap
    from nurture.engine.service import Engine, EngineOptions
    from nurture.store.db import create_engine_for, session_factory
    from nurture.tokens import Signer

    engine = Engine(
        load_project(project_dir),
        session_factory(create_engine_for(url)),
        transport,
        Signer(SECRET),
        EngineOptions(base_url=BASE_URL, batch_size=batch_size),
    )
    settle_heap()  # as `nurture worker` does once its engine is built
    return engine


def warm_up(engine: Any) -> None:
    """Compile the template and load MRML once: a worker process lives long."""
    from nurture.rendering import sample_context

    config = engine.project.config
    engine.deliverer._templates.render(TEMPLATE, sample_context(config.properties, config.stages))


def render_only(url: str, project_dir: Path, results: Any) -> None:
    """The ceiling: the same template for the same contacts, as `Deliverer._compose` does."""
    try:
        from sqlalchemy import select

        from nurture.definitions.loader import load_project
        from nurture.rendering import TemplateLibrary, email_context
        from nurture.store.db import create_engine_for, session_factory
        from nurture.store.models import Contact

        project = load_project(project_dir)
        config = project.config
        with session_factory(create_engine_for(url))() as session:
            contacts = list(session.scalars(select(Contact).order_by(Contact.id)))
        library = TemplateLibrary(project.templates_dir)  # as the Deliverer builds it
        now = datetime.now(UTC)
        unsubscribe = f"{BASE_URL}/u/eyJzIjoxMjM0NX0.AbCdEfGhIjKlMnOpQrStUvWxYz0"
        view = f"{BASE_URL}/v/eyJzIjoxMjM0NX0.AbCdEfGhIjKlMnOpQrStUvWxYz0"

        def one(contact: Contact) -> Any:
            context = email_context(
                contact.view(config.stages, config.properties),
                unsubscribe_url=unsubscribe,
                view_in_browser_url=view,
                now=now,
            )
            return library.render(TEMPLATE, context)

        sample = one(contacts[0])
        started = time.perf_counter()
        for contact in contacts:
            one(contact)
        seconds = time.perf_counter() - started
        results.put(
            {
                "emails": len(contacts),
                "seconds": seconds,
                "rss": peak_rss_mb(),
                "html": len(sample.html.encode()),
                "text": len(sample.text.encode()),
            }
        )
    except BaseException:
        results.put({"error": traceback.format_exc()})


def inline_worker(
    url: str, project_dir: Path, smtp_url: str | None, batch_size: int, results: Any
) -> None:
    """One worker process: claim a batch, advance it with inline delivery, until none is due."""
    try:
        from nurture.transports import SMTPTransport

        transport = SMTPTransport.from_url(smtp_url) if smtp_url else discarding_capture()
        engine = build_engine(url, project_dir, transport, batch_size)
        warm_up(engine)
        totals = instrument(transport)
        emails = batches = 0
        started = time.perf_counter()
        while True:
            ids = engine.claim_due()
            if not ids:
                break
            emails += len(engine.advance(ids, deliver=True).sends)
            batches += 1
        seconds = time.perf_counter() - started
        transport.close()
        results.put(
            {
                "emails": emails,
                "seconds": seconds,
                "rss": peak_rss_mb(),
                "batches": batches,
                "stages": dict(totals),
            }
        )
    except BaseException:
        results.put({"error": traceback.format_exc()})


def _settings_env(url: str, project_dir: Path, redis_url: str) -> None:
    os.environ.update(
        NURTURE_DATABASE_URL=url,
        NURTURE_REDIS_URL=redis_url,
        NURTURE_PROJECT_DIR=str(project_dir),
        NURTURE_SECRET_KEY=SECRET,
        NURTURE_BASE_URL=BASE_URL,
        NURTURE_OUTBOX_DIR=str(project_dir.parent / "outbox"),
    )
    os.environ.pop("NURTURE_SMTP_URL", None)


def dramatiq_worker(
    url: str,
    project_dir: Path,
    redis_url: str,
    threads: int,
    ready: Any,
    stop: Any,
    results: Any,
) -> None:
    """`nurture worker --processes 1` in-process, with the capture transport swapped in."""
    try:
        _settings_env(url, project_dir, redis_url)
        import dramatiq

        from nurture.engine.broker import install
        from nurture.engine.factory import build_engine as build_from_settings
        from nurture.settings import get_settings

        settings = get_settings()
        broker = install(settings)
        from nurture.engine import actors

        transport = discarding_capture()
        engine = build_from_settings(settings, transport=transport)
        warm_up(engine)
        actors.engine = lambda: engine  # type: ignore[assignment,misc]
        broker.emit_after("process_boot")
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        worker.start()
        ready.set()
        stop.wait()
        worker.stop()
        broker.close()
        results.put({"emails": transport.delivered, "rss": peak_rss_mb()})
    except BaseException:
        ready.set()
        results.put({"error": traceback.format_exc()})


def dramatiq_scheduler(
    url: str, project_dir: Path, redis_url: str, interval: float, ready: Any, go: Any, stop: Any
) -> None:
    """`nurture scheduler` (as `run_scheduler` builds it), started once warm."""
    _settings_env(url, project_dir, redis_url)
    from nurture.engine.broker import install
    from nurture.engine.scheduler import Scheduler
    from nurture.settings import get_settings

    install(get_settings())
    from nurture.engine import actors

    scheduler = Scheduler(
        actors.engine(),
        lambda ids: actors.advance_batch.send(list(ids)),
        lambda ids: actors.deliver_batch.send(list(ids)),
        interval=interval,
    )
    ready.set()
    go.wait()
    with suppress(KeyboardInterrupt):
        scheduler.run(stop)


def smtp_sink(ready: Any, stop: Any, results: Any) -> None:
    """An aiosmtpd server on 127.0.0.1 that accepts every message and counts them."""
    from aiosmtpd.controller import Controller

    class Counting:
        received = 0

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.received += 1
            return "250 2.0.0 OK"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Counting()
    controller = Controller(handler, hostname="127.0.0.1", port=port, ready_timeout=5.0)
    controller.start()
    ready.put(controller.port)
    stop.wait()
    controller.stop()
    results.put({"received": handler.received, "rss": peak_rss_mb()})


# --- the parent ----------------------------------------------------------------------


def run_child(target: Callable[..., None], *args: Any, timeout: float = 900) -> dict[str, Any]:
    context = mp.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    try:
        result: dict[str, Any] = results.get(timeout=timeout)
    finally:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()
    if "error" in result:
        raise RuntimeError(f"{target.__name__} failed:\n{result['error']}")
    return result


def run_smtp(url: str, project_dir: Path, batch_size: int) -> tuple[dict[str, Any], int]:
    context = mp.get_context("spawn")
    ready, stop, results = context.Queue(), context.Event(), context.Queue()
    sink = context.Process(target=smtp_sink, args=(ready, stop, results))
    sink.start()
    try:
        port = ready.get(timeout=30)
        smtp_url = f"smtp://127.0.0.1:{port}?starttls=off"
        result = run_child(inline_worker, url, project_dir, smtp_url, batch_size)
        stop.set()
        received = int(results.get(timeout=30)["received"])
    finally:
        stop.set()
        sink.join(timeout=30)
        if sink.is_alive():
            sink.kill()
    return result, received


def run_dramatiq(
    url: str,
    project_dir: Path,
    redis_url: str,
    threads: int,
    expected: int,
    interval: float,
    processes: int = 1,
) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    run_id = client.info("server")["run_id"]
    context = mp.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    readies = [context.Event() for _ in range(processes)]
    workers = [
        context.Process(
            target=dramatiq_worker,
            args=(url, project_dir, redis_url, threads, ready, stop, results),
        )
        for ready in readies
    ]
    scheduler_ready, go, scheduler_stop = context.Event(), context.Event(), context.Event()
    scheduler = context.Process(
        target=dramatiq_scheduler,
        args=(url, project_dir, redis_url, interval, scheduler_ready, go, scheduler_stop),
    )
    for worker in workers:
        worker.start()
    scheduler.start()
    try:
        started_ok = all(ready.wait(timeout=120) for ready in readies)
        if not started_ok or not scheduler_ready.wait(timeout=120):
            raise RuntimeError("the Dramatiq worker or the scheduler did not start")
        # One connection for the whole watch: a new one per poll (a PostgreSQL
        # backend forked 50 times a second) took CPU from the measured processes.
        with psycopg.connect(url, autocommit=True) as watch:
            started = time.perf_counter()
            go.set()
            deadline = started + 600
            while (done := _sent(watch)) < expected and time.perf_counter() < deadline:
                if not all(w.is_alive() for w in workers) or not scheduler.is_alive():
                    break
                time.sleep(0.02)
            seconds = time.perf_counter() - started
        scheduler_stop.set()
        stop.set()
        parts = [results.get(timeout=60) for _ in workers]
    finally:
        scheduler_stop.set()
        stop.set()
        for process in (scheduler, *workers):
            if process.pid is not None:
                process.join(timeout=30)
                if process.is_alive():
                    process.kill()
        try:
            restarted = client.info("server")["run_id"] != run_id
            client.flushdb()
        except redis.RedisError:
            restarted = True
        client.close()
    for part in parts:
        if "error" in part:
            raise RuntimeError(f"the Dramatiq worker failed:\n{part['error']}")
    result = {
        "emails": sum(part["emails"] for part in parts),
        "rss": max(part["rss"] for part in parts),
    }
    return {**result, "seconds": seconds, "sent": done, "redis_restarted": restarted}


def check(url: str, mode: str, expected: int) -> str:
    statuses = outcome(url)
    if statuses != {"sent": expected}:
        return f"{mode}: expected {expected} sent, found {statuses}"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--emails", type=int, default=10_000, help="due enrollments")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--admin-url", default=ADMIN_URL, help="PostgreSQL admin URL")
    parser.add_argument("--redis-url", default=REDIS_URL, help="flushed before and after")
    parser.add_argument("--dramatiq-threads", type=int, default=4)
    parser.add_argument("--scheduler-interval", type=float, default=1.0)
    parser.add_argument("--skip-smtp", action="store_true")
    parser.add_argument("--skip-dramatiq", action="store_true")
    args = parser.parse_args()
    n = args.emails

    rows: list[tuple[str, dict[str, Any]]] = []
    problems: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="nurture-bench-"))
    try:
        project_dir = tmp / "project"
        write_project(project_dir)
        with temporary_database(args.admin_url) as url:
            started = time.perf_counter()
            load(url, project_dir, n)
            print(
                f"loaded {n:,} contacts and due enrollments in {time.perf_counter() - started:.1f} s"
            )

            render = run_child(render_only, url, project_dir)
            rows.append(("render only (ceiling)", render))
            print(f"render only: {render['emails'] / render['seconds']:,.0f} emails/s")

            capture = run_child(inline_worker, url, project_dir, None, args.batch_size)
            rows.append(("inline, capture transport", capture))
            problems.append(check(url, "capture", n))
            print(f"inline, capture: {capture['emails'] / capture['seconds']:,.0f} emails/s")

            smtp: dict[str, Any] | None = None
            if not args.skip_smtp:
                reset(url)
                smtp, received = run_smtp(url, project_dir, args.batch_size)
                rows.append(("inline, SMTP sink", smtp))
                problems.append(check(url, "smtp", n))
                if received != n:
                    problems.append(f"smtp: the sink received {received}, expected {n}")
                print(f"inline, SMTP sink: {smtp['emails'] / smtp['seconds']:,.0f} emails/s")

            if not args.skip_dramatiq:
                from nurture.cli.engine import WORKER_PROCESSES, WORKER_THREADS

                runs = [
                    (1, args.dramatiq_threads, "dramatiq"),
                    (WORKER_PROCESSES, WORKER_THREADS, "nurture worker defaults"),
                ]
                for processes, threads, name in runs:
                    reset(url)
                    result = run_dramatiq(
                        url,
                        project_dir,
                        args.redis_url,
                        threads,
                        n,
                        args.scheduler_interval,
                        processes,
                    )
                    label = f"{name}, {processes} process(es) × {threads} threads, capture"
                    rows.append((label, result))
                    problems.append(check(url, name, n))
                    if result["redis_restarted"]:
                        problems.append(
                            f"{name}: Redis restarted during the run (lost messages wait for "
                            "their lease to expire): that figure is not a throughput"
                        )
                    rate = result["emails"] / result["seconds"]
                    print(f"{label}: {rate:,.0f} emails/s")
                inline = capture["emails"] / capture["seconds"]
                print(
                    f"nurture worker with its defaults ({WORKER_PROCESSES} processes × "
                    f"{WORKER_THREADS} threads): {rate:,.0f} emails/s = {rate / inline:.0%} of "
                    f"the inline rate, {rate / WORKER_PROCESSES:,.0f} per process "
                    f"(target ≥ 90 %: {'met' if rate >= 0.9 * inline else 'NOT met'})"
                )

        report(n, args.batch_size, render, capture, smtp, rows)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for problem in filter(None, problems):
        print(f"PROBLEM: {problem}")


def report(
    n: int,
    batch_size: int,
    render: dict[str, Any],
    capture: dict[str, Any],
    smtp: dict[str, Any] | None,
    rows: list[tuple[str, dict[str, Any]]],
) -> None:
    print()
    print(
        f"Send throughput: {n:,} due enrollments, batch {batch_size}, PostgreSQL; "
        f"template {TEMPLATE}: HTML {render['html']:,} B, text {render['text']:,} B"
    )
    header = (
        f"{'mode':<44} {'emails':>7} {'wall s':>7} {'emails/s':>9} {'ms/email':>9} {'peak RSS':>9}"
    )
    print(header)
    print("-" * len(header))
    for label, row in rows:
        rate = row["emails"] / row["seconds"]
        print(
            f"{label:<44} {row['emails']:>7,} {row['seconds']:>7.2f} {rate:>9,.0f} "
            f"{1e3 / rate:>9.3f} {row['rss']:>6.0f} MB"
        )
    ceiling = render["emails"] / render["seconds"]
    rate = capture["emails"] / capture["seconds"]
    print()
    print(
        f"capture transport: {rate:,.0f} emails/s per worker process "
        f"(target ≥ 1,000: {'met' if rate >= 1000 else 'NOT met'}); "
        f"render-only ceiling {ceiling:,.0f}/s, the engine costs {ceiling / rate:.2f}× "
        f"(target ≤ 2×: {'met' if ceiling / rate <= 2 else 'NOT met'})"
    )

    print()
    columns = [("capture", capture)] + ([("SMTP sink", smtp)] if smtp else [])
    print("Per-stage breakdown of the inline runs, ms per email (share of wall time):")
    print(f"  {'stage':<11}" + "".join(f"{name:>22}" for name, _ in columns))
    for stage in (*STAGES, "other", "total"):
        cells = []
        for _, row in columns:
            stages = row["stages"]
            if stage == "total":
                value = row["seconds"]
            elif stage == "other":
                value = row["seconds"] - sum(stages.values())
            else:
                value = stages.get(stage, 0.0)
            cells.append(f"{value / row['emails'] * 1e3:.3f} ({value / row['seconds']:.1%})")
        print(f"  {stage:<11}" + "".join(f"{cell:>22}" for cell in cells))
    print(
        f"  claim = claim_due_enrollments; load = {'/'.join(LOAD)};\n"
        f"  state = save_enrollments; ledger = {'/'.join(LEDGER)};\n"
        f"  outcome = {'/'.join(OUTCOME)} (sending each outcome, and waiting for its commit);\n"
        "  render = TemplateLibrary.render; MIME = build_message; transport = _deliver;\n"
        "  commit = SessionTransaction.commit; other = the rest (executor, links, ORM, glue)"
    )


if __name__ == "__main__":
    main()
