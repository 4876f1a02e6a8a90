"""Transports: how a rendered email leaves, and the one place that builds its bytes.

`Transport.send` (in `base`) is the pipeline every transport shares: the
message bytes are built once by `mime.build_message`, then handed to one of

- `SMTPTransport` (``NURTURE_SMTP_URL``): a relay, connection reused;
- `OutboxTransport` (the embedded default): `.eml` files in a folder;
- `CaptureTransport`: a list in memory, for tests and `simulate`.

A refusal comes back as `TransientDeliveryError` (retry later, with
`retry_delay`, up to `MAX_ATTEMPTS`) or `PermanentDeliveryError` (record it,
do not retry). `transport_from_settings` picks the transport settings ask for.
"""

from __future__ import annotations

import ssl

from nurture.settings import Settings
from nurture.transports.base import (
    MAX_ATTEMPTS,
    DeliveryError,
    MessageSigner,
    PermanentDeliveryError,
    TransientDeliveryError,
    Transport,
    mask_address,
    retry_delay,
)
from nurture.transports.capture import CapturedEmail, CaptureTransport
from nurture.transports.message import Delivery, OutgoingEmail
from nurture.transports.mime import SEND_ID_HEADER, BuiltMessage, build_message
from nurture.transports.outbox import OutboxTransport
from nurture.transports.smtp import SMTPTransport

__all__ = [
    "MAX_ATTEMPTS",
    "SEND_ID_HEADER",
    "BuiltMessage",
    "CaptureTransport",
    "CapturedEmail",
    "Delivery",
    "DeliveryError",
    "MessageSigner",
    "OutboxTransport",
    "OutgoingEmail",
    "PermanentDeliveryError",
    "SMTPTransport",
    "TransientDeliveryError",
    "Transport",
    "build_message",
    "mask_address",
    "retry_delay",
    "transport_from_settings",
]


def transport_from_settings(settings: Settings) -> Transport:
    """SMTP when ``NURTURE_SMTP_URL`` is set, else the outbox folder; DKIM-signing
    when ``NURTURE_DKIM_*`` are set."""
    from nurture.transports.dkim import DkimSigner

    transport: Transport
    if settings.smtp_url:
        context = None
        if settings.smtp_ca_file is not None:
            context = ssl.create_default_context()
            context.load_verify_locations(cafile=str(settings.smtp_ca_file))
        transport = SMTPTransport.from_url(settings.smtp_url, ssl_context=context)
    else:
        transport = OutboxTransport(settings.outbox_dir)
    transport.signer = DkimSigner.from_settings(settings)
    return transport
