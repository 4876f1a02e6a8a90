"""`nurture run` and `nurture scheduler`: long-running processes around the engine.

`run` is the embedded mode: Dramatiq's in-process broker with worker threads
and the scheduler in one process, SQLite and the outbox by default — the same
actors, scheduler and engine as a production deployment, only co-located.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType

import dramatiq

from nurture.engine.broker import install
from nurture.engine.scheduler import Scheduler
from nurture.settings import Settings

log = logging.getLogger("nurture.run")


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("received signal %d, stopping", signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)


def run_scheduler(settings: Settings, interval: float, stop: threading.Event | None = None) -> None:
    """A scheduler process: dispatches to whatever broker the settings name."""
    install(settings)
    from nurture.engine import actors

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
    scheduler = Scheduler(
        actors.engine(),
        lambda ids: _send(actors.advance_batch, ids),
        lambda ids: _send(actors.deliver_batch, ids),
        lambda ids: _send(actors.notify_batch, ids),
        interval=interval,
    )
    scheduler.run(stop)


def _send(actor: dramatiq.Actor[..., None], ids: Sequence[int]) -> None:
    actor.send(list(ids))


def run_embedded(
    settings: Settings,
    *,
    threads: int = 2,
    interval: float = 1.0,
    stop: threading.Event | None = None,
    web: tuple[str, int] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Scheduler and worker threads in this process, until stopped.

    `on_ready` runs once the project and the database have been checked, before
    any thread starts: what announces the process never precedes its refusal.
    """
    broker = install(settings)
    from nurture.engine import actors

    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        _stop_on_signals(stop)
    actors.engine()  # fail fast on a bad project or database, before any thread starts
    if on_ready is not None:
        on_ready()
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    scheduler = Scheduler(
        actors.engine(),
        lambda ids: _send(actors.advance_batch, ids),
        lambda ids: _send(actors.deliver_batch, ids),
        lambda ids: _send(actors.notify_batch, ids),
        interval=interval,
    )
    thread = threading.Thread(target=scheduler.run, args=(stop,), name="scheduler", daemon=True)
    thread.start()
    server = None
    if web is not None:
        # Tracking links, unsubscribe pages and the API, in this same process.
        from nurture.web.app import create_app
        from nurture.web.server import serve_in_thread

        server, web_thread = serve_in_thread(create_app(actors.engine(), settings), *web)
        log.info("web app on http://%s:%d (OpenAPI at /docs)", *web)
    log.info("nurture running: %d worker threads, scheduler every %.1fs", threads, interval)
    try:
        stop.wait()
    finally:
        if server is not None:
            server.should_exit = True
            web_thread.join(timeout=10)
        thread.join(timeout=10)
        worker.stop()
        broker.close()
