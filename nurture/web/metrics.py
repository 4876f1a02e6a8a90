"""`GET /metrics`: Prometheus figures read from the database at scrape time.

Workers, schedulers and web processes share one database; a counter kept in
any one of them would see only its own share (and reset on restart), so every
figure is read from the rows (`store.metrics_queries`) when Prometheus asks,
plus the Dramatiq queue lengths from Redis when `NURTURE_REDIS_URL` is set.
Any `nurture serve` answers the same, so scrape one of them.

The figures are counts, not personal data, so the route is open unless
`NURTURE_METRICS_TOKEN` is set, in which case it wants
`Authorization: Bearer <token>` (Prometheus' `authorization` scrape option).
Either way, keep it off the public reverse proxy.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Response, status
from fastapi.concurrency import run_in_threadpool
from prometheus_client.core import CollectorRegistry, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import Collector

import nurture.clock as clock
from nurture.engine.broker import QUEUE
from nurture.store.metrics import RECENT_EVENTS, Figures, read_figures
from nurture.store.statuses import SendStatus
from nurture.web.context import WebContext, web_context

log = logging.getLogger("nurture.web")

router = APIRouter(tags=["operations"])

#: Always reported, at 0 when absent, so a dashboard's series never vanish.
SEND_STATUSES = tuple(SendStatus)
#: Dramatiq's Redis keys (brokers/redis/dispatch.lua): each queue's messages sit in
#: the hash `<namespace>:<queue>.msgs` until acknowledged; `.DQ` is the delay
#: queue (retries waiting for their backoff), `.XQ` the dead letters.
REDIS_NAMESPACE = "nurture"
REDIS_QUEUES = (QUEUE, f"{QUEUE}.DQ", f"{QUEUE}.XQ")


def queue_depths(redis_url: str) -> dict[str, int] | None:
    """Messages per Dramatiq queue, or None when Redis cannot be reached."""
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        return {
            queue: int(client.hlen(f"{REDIS_NAMESPACE}:{queue}.msgs")) for queue in REDIS_QUEUES
        }
    except redis.RedisError as exc:
        log.warning("metrics: Redis is not reachable (%s)", type(exc).__name__)
        return None
    finally:
        client.close()


def _labelled(
    name: str, documentation: str, label: str, values: dict[str, int]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, count in sorted(values.items()):
        family.add_metric([key], count)
    return family


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


class Snapshot(Collector):
    """A one-shot collector over figures already read (the registry is per scrape)."""

    def __init__(self, figures: Figures, queues: dict[str, int] | None, redis: bool) -> None:
        self.figures = figures
        self.queues = queues
        self.redis = redis

    def collect(self) -> Iterator[Metric]:
        f = self.figures
        sends = {name: 0 for name in SEND_STATUSES} | f.sends
        # `_total` names are counts of rows, which only grow (sends and events
        # are never deleted), but they are read, not incremented: gauges.
        yield _labelled(
            "nurture_sends_total", "Emails in the send ledger by status", "status", sends
        )
        yield _gauge("nurture_sends_due", "Claimed emails whose (next) attempt is due", f.sends_due)
        yield _gauge(
            "nurture_sends_held",
            "Emails held because their template broke while running (logged with file:line)",
            f.sends_held,
        )
        yield _gauge(
            "nurture_sends_throttled",
            "Emails left due by sending.rate or sending.warmup: they leave when a place frees",
            f.sends_throttled,
        )
        yield _labelled(
            "nurture_enrollments", "Workflow enrollments by status", "status", f.enrollments
        )
        yield _gauge(
            "nurture_enrollments_due",
            "Enrollments due now (the scheduler's backlog)",
            f.enrollments_due,
        )
        yield _gauge(
            "nurture_oldest_due_seconds",
            "How late the oldest due enrollment is",
            f.oldest_due_seconds,
        )
        yield _labelled("nurture_events_total", "Events recorded, by type", "type", f.events)
        yield _gauge(
            "nurture_events_recent",
            f"Events received in the last {int(RECENT_EVENTS.total_seconds())} seconds",
            f.events_recent,
        )
        yield _labelled("nurture_handoffs", "Sales handoffs by status", "status", f.handoffs)
        yield _gauge("nurture_handoffs_overdue", "Open handoffs past their SLA", f.handoffs_overdue)
        yield _labelled(
            "nurture_notifications",
            "Handoff notifications (webhooks, emails to sales) by status",
            "status",
            f.notifications,
        )
        up = GaugeMetricFamily("nurture_redis_up", "1 when the broker's Redis answered the scrape")
        up.add_metric([], 1 if self.queues is not None else 0)
        if self.redis:
            yield up
        queue = GaugeMetricFamily(
            "nurture_queue_messages",
            "Messages in a Dramatiq queue (queued or in flight; .DQ delayed, .XQ dead)",
            labels=["queue"],
        )
        for name in REDIS_QUEUES:
            queue.add_metric([name], (self.queues or {}).get(name, 0))
        yield queue


def render(context: WebContext, now: datetime) -> bytes:
    """The exposition text (format 0.0.4) of one scrape."""
    with context.engine.sessions() as session:
        figures = read_figures(session, now)
    redis_url = context.settings.redis_url
    queues = queue_depths(redis_url) if redis_url else None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Snapshot(figures, queues, redis=redis_url is not None))
    return generate_latest(registry)


def _authorised(context: WebContext, authorization: str | None) -> bool:
    token = context.settings.metrics_token
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@router.get(
    "/metrics",
    summary="Prometheus metrics, read from the database at scrape time",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_PLAIN_0_0_4: {}}},
        401: {"description": "NURTURE_METRICS_TOKEN is set and the bearer token differs"},
    },
)
async def metrics(
    context: Annotated[WebContext, Depends(web_context)],
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    if not _authorised(context, authorization):
        headers: Any = {"WWW-Authenticate": "Bearer"}
        return Response(status_code=status.HTTP_401_UNAUTHORIZED, headers=headers)
    body = await run_in_threadpool(render, context, clock.now())
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
