"""One log line per email that leaves or is refused, for whoever watches `nurture run`.

An operator reads what the engine did to each email (sent, skipped and why,
failed, retried, held) by send id, workflow, step and template: never by
address or name (`nurture explain` or the send id in the database says who).
Skip reasons are codes (`suppressed:unsubscribed`, `prospect`), delivery errors
have every address masked (`transports.mask_addresses`), so a line carries no
personal data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Protocol

log = logging.getLogger("nurture.delivery")

#: Record kind → level and what happened to the email.
_OUTCOMES = {
    "send": (logging.INFO, "sent"),
    "skip": (logging.INFO, "not sent"),
    "retry": (logging.WARNING, "not sent, will retry"),
    "fail": (logging.WARNING, "failed"),
    "hold": (logging.WARNING, "held"),
    "throttled": (logging.DEBUG, "throttled"),
}


class _Send(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def workflow(self) -> str | None: ...
    @property
    def step(self) -> str | None: ...
    @property
    def template(self) -> str: ...


def log_outcome(kind: str, send: _Send, details: Mapping[str, Any]) -> None:
    level, what = _OUTCOMES.get(kind, (logging.DEBUG, kind))
    if not log.isEnabledFor(level):
        return
    if kind == "skip" and details.get("reason") == "paused":
        what = "deferred"  # the contact paused their emails: sent when the pause ends
    why = details.get("reason") if kind == "skip" else details.get("error")
    log.log(
        level,
        "email %s: send %d, %s/%s, template %s%s",
        what,
        send.id,
        send.workflow or "-",
        send.step or "-",
        send.template,
        f" ({why})" if why else "",
        extra={
            "send_id": send.id,
            "workflow": send.workflow,
            "step": send.step,
            "template": send.template,
            "outcome": kind,
        },
    )
