"""Dramatiq actors: thin, idempotent, one engine call each.

`nurture worker` runs Dramatiq's own worker on this module. A message may be
delivered twice (at-least-once); the engine makes that harmless: enrollment
state is written with an optimistic check and every send has a unique claim.
"""

from __future__ import annotations

from functools import cache

import dramatiq
import dramatiq.broker

from nurture.engine.broker import QUEUE, install
from nurture.engine.service import Engine
from nurture.errors import ConfigurationError
from nurture.logs import configure_nurture_json
from nurture.settings import get_settings

# `nurture run` installs the in-process broker before importing this module;
# Dramatiq's own worker (`nurture worker`) imports it cold: build from settings.
if dramatiq.broker.global_broker is None:
    install(get_settings())
    # Dramatiq's CLI set up its own text logging in this worker process; with
    # NURTURE_LOG_FORMAT=json our loggers write JSON lines regardless.
    if get_settings().log_format == "json":
        configure_nurture_json()


@cache
def engine() -> Engine:
    """One engine per worker process, built from the environment on first use."""
    from nurture.engine.factory import build_engine
    from nurture.engine.runtime import settle_heap

    built = build_engine(get_settings())
    settle_heap()
    return built


#: A broken deployment (bad SMTP credentials, missing secret) is not retried:
#: the work stays in the database and resumes once the operator fixes it.
@dramatiq.actor(queue_name=QUEUE, max_retries=5, throws=(ConfigurationError,))
def advance_batch(enrollment_ids: list[int]) -> None:
    engine().advance(enrollment_ids)


@dramatiq.actor(queue_name=QUEUE, max_retries=5, throws=(ConfigurationError,))
def deliver_batch(send_ids: list[int]) -> None:
    engine().deliver(send_ids)


@dramatiq.actor(queue_name=QUEUE, max_retries=5, throws=(ConfigurationError,))
def notify_batch(notification_ids: list[int]) -> None:
    engine().notifier.deliver(notification_ids)
