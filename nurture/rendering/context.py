"""What a template may read, for a real send and for validate/preview.

One function builds the send context so every caller (the send pipeline,
`simulate`, tests) gives templates the same names; `sample_context` builds the
same shape around a plausible contact with placeholder URLs, so `validate`
checks templates against exactly what a send will provide.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import nurture.clock as clock
from nurture.contacts.view import ContactView, sample_contact

#: Placeholder URLs for validate and preview; never tracked, never sent.
SAMPLE_UNSUBSCRIBE_URL = "https://example.com/u/preview"
SAMPLE_VIEW_IN_BROWSER_URL = "https://example.com/v/preview"


def email_context(
    contact: ContactView,
    *,
    unsubscribe_url: str,
    view_in_browser_url: str,
    now: datetime,
    **extra: Any,
) -> dict[str, Any]:
    """The names a template sees when it is sent to `contact`.

    `subject` and `preheader` are added by the renderer itself (rendered from
    the front matter) so the layout can use `<mj-preview>{{ preheader }}`.
    """
    return {
        "contact": contact,
        "unsubscribe_url": unsubscribe_url,
        "view_in_browser_url": view_in_browser_url,
        "now": now,
        **extra,
    }


def sample_context(
    properties: Mapping[str, str] | None = None,
    stages: tuple[str, ...] = ("subscriber", "lead"),
) -> dict[str, Any]:
    """A send context around `contacts.sample_contact`, for validate and preview.

    `properties` are the project's declared custom properties (name → type),
    so a template reading `contact.industry` passes only if it is declared.
    """
    return email_context(
        sample_contact(properties, stages),
        unsubscribe_url=SAMPLE_UNSUBSCRIBE_URL,
        view_in_browser_url=SAMPLE_VIEW_IN_BROWSER_URL,
        now=clock.now(),
    )
