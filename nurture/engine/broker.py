"""The Dramatiq broker: Redis when `NURTURE_REDIS_URL` is set, in-process otherwise.

The broker only dispatches: every message names work the database already
holds (DESIGN.md), so losing every Redis message loses nothing — the scheduler
finds the work again once its lease expires. That is also why no message is
ever delayed for long: waits live in `next_run_at`, not in the broker.
"""

from __future__ import annotations

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware import AgeLimit, Callbacks, Pipelines, Retries, TimeLimit

from nurture.settings import Settings

QUEUE = "nurture"


def build_broker(settings: Settings) -> dramatiq.Broker:
    middleware = [
        AgeLimit(),
        TimeLimit(time_limit=10 * 60 * 1000),
        Callbacks(),
        Pipelines(),
        Retries(max_retries=5, min_backoff=1_000, max_backoff=60_000),
    ]
    broker: dramatiq.Broker
    if settings.redis_url:
        broker = RedisBroker(  # type: ignore[no-untyped-call]
            url=settings.redis_url, middleware=middleware, namespace="nurture"
        )
    else:
        broker = StubBroker(middleware=middleware)
        broker.emit_after("process_boot")
    return broker


def install(settings: Settings) -> dramatiq.Broker:
    """Make our broker Dramatiq's global one; must run before the actors are imported."""
    broker = build_broker(settings)
    dramatiq.set_broker(broker)
    return broker
