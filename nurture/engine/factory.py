"""Build a ready engine from settings: project, database, transport, signing key."""

from __future__ import annotations

from datetime import timedelta

from nurture.engine.runtime import Runtime
from nurture.engine.service import Engine, EngineOptions
from nurture.records import Recorder, discard
from nurture.settings import Settings
from nurture.transports import Transport, transport_from_settings


def build_engine(
    settings: Settings, transport: Transport | None = None, record: Recorder = discard
) -> Engine:
    runtime = Runtime(settings, settings.project_dir)
    return Engine(
        runtime.project,
        runtime.sessions,
        transport or transport_from_settings(settings),
        settings.signer(),
        EngineOptions(
            base_url=settings.base_url,
            enrollment_lease=timedelta(seconds=settings.lease_seconds),
            send_lease=timedelta(seconds=settings.lease_seconds),
            webhook_secret=settings.webhook_secret or settings.signing_key(),
        ),
        record=record,
    )
