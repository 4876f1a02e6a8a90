"""The links every email carries: unsubscribe (with its List-Unsubscribe header),
view in browser, tracked clicks and the open pixel, each a signed token.

Apart from the deliverer because the web side reads them too (`TRACKING_DAYS`,
`Links`) and they know nothing of sending.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

import nurture.clock as clock
from nurture.definitions import model as m
from nurture.delivery.consent import MAILTO_SUBJECT_PREFIX
from nurture.tokens import Signer, day_number


def list_unsubscribe(url: str, token: str, sending: m.Sending) -> str:
    """The List-Unsubscribe value: the HTTPS link, then a mailto (RFC 2369).

    The mailto's subject is ``unsubscribe-<token>``: an inbound handler maps
    it to the same one-click `POST /u/<token>` (see `consent.mailto_token`).
    """
    address = _unsubscribe_mailbox(sending.unsubscribe_mailto, sending.from_address)
    if not address:
        return f"<{url}>"
    return f"<{url}>, <mailto:{address}?subject={MAILTO_SUBJECT_PREFIX}{token}>"


@lru_cache(maxsize=16)
def _unsubscribe_mailbox(configured: str | None, from_address: str) -> str:
    """The same for every email of a project; parsing the From address is not cheap."""
    if configured is not None:
        return configured
    domain = parseaddr(from_address)[1].rpartition("@")[2]
    return f"unsubscribe@{domain}" if domain else ""


@dataclass(frozen=True)
class Links:
    """Builds the signed links every email carries."""

    signer: Signer
    base_url: str

    def unsubscribe_token(self, send_id: int) -> str:
        return self.signer.sign("unsubscribe", {"s": send_id})

    def unsubscribe(self, send_id: int) -> str:
        return f"{self.base_url}/u/{self.unsubscribe_token(send_id)}"

    def view_in_browser(self, send_id: int) -> str:
        return f"{self.base_url}/v/{self.signer.sign('view', {'s': send_id})}"

    def click(self, send_id: int, url: str) -> str:
        """A tracked link: the token carries the target, so the redirect goes nowhere else,
        and the day it was made, so that after `TRACKING_DAYS` it records nothing."""
        token = self.signer.sign("click", {"s": send_id, "u": url, "d": _today()})
        return f"{self.base_url}/t/c/{token}"

    def open_pixel(self, send_id: int) -> str:
        return f"{self.base_url}/t/o/{self.signer.sign('open', {'s': send_id, 'd': _today()})}.gif"


#: How long a tracking token (click, open) counts: a link still
#: followed after a year leads where it led, but records nothing. Unsubscribe
#: tokens never expire: an unsubscribe link must work for as long as the mail exists.
TRACKING_DAYS = 365


def _today() -> int:
    return day_number(clock.now())
