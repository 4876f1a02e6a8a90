"""The ESP webhook formats nurture reads, by the name in `/v1/webhooks/{provider}`.

One module each under `nurture.web.esp` (what they share is in `esp.base`):

- ``generic``: our own signed format (NURTURE_WEBHOOK_SECRET).
- ``mailgun``: Mailgun's event webhooks (NURTURE_MAILGUN_SIGNING_KEY).
- ``sendgrid``: SendGrid's Signed Event Webhook (NURTURE_SENDGRID_VERIFICATION_KEY).
- ``postmark``: Postmark's webhooks (NURTURE_POSTMARK_WEBHOOK_TOKEN).
- ``brevo``: Brevo's transactional webhooks (NURTURE_BREVO_WEBHOOK_TOKEN).
- ``ses``: Amazon SES through SNS, signatures checked (NURTURE_SES_TOPIC_ARNS).
"""

from __future__ import annotations

from nurture.web.esp.base import Provider, ProviderEvent, Receipt, Replay, WebhookRefused
from nurture.web.esp.brevo import Brevo
from nurture.web.esp.generic import Generic
from nurture.web.esp.mailgun import Mailgun
from nurture.web.esp.postmark import Postmark
from nurture.web.esp.sendgrid import SendGrid
from nurture.web.esp.ses import AmazonSes

__all__ = ["PROVIDERS", "Provider", "ProviderEvent", "Receipt", "Replay", "WebhookRefused"]

PROVIDERS: dict[str, Provider] = {
    "generic": Generic(),
    "mailgun": Mailgun(),
    "sendgrid": SendGrid(),
    "postmark": Postmark(),
    "brevo": Brevo(),
    "ses": AmazonSes(),
}
