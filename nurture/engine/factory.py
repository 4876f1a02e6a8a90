"""Build a ready engine from settings: project, database, transport, signing key."""

from __future__ import annotations

from datetime import timedelta

from nurture.delivery.pace import pace_for
from nurture.engine.runtime import Runtime
from nurture.engine.service import Engine, EngineOptions
from nurture.records import Recorder, discard
from nurture.settings import Settings
from nurture.transports import Transport, transport_from_settings


def build_engine(
    settings: Settings, transport: Transport | None = None, record: Recorder = discard
) -> Engine:
    runtime = Runtime(settings, settings.project_dir)
    pacing = runtime.project.config.sending.pacing
    return Engine(
        runtime.project,
        runtime.sessions,
        # `sending.connections` to the relay from this process, shared by its threads.
        (transport or transport_from_settings(settings)).with_connections(pacing.connections),
        settings.signer(),
        EngineOptions(
            base_url=settings.base_url,
            enrollment_lease=timedelta(seconds=settings.lease_seconds),
            send_lease=timedelta(seconds=settings.lease_seconds),
            webhook_secret=settings.webhook_secret or settings.signing_key(),
            pace=pace_for(pacing, settings.redis_url),
        ),
        record=record,
    )
