"""The HTTP side of nurture: JSON API, sales inbox, tracking, unsubscribe, ESP webhooks (FastAPI).

`create_app(engine, settings)` builds the app; `serve_in_thread` hosts it in
another process's thread. Modules: `app` (factory, health), `api` (`/v1`
events and contacts), `handoff_api` (`/v1/handoffs`), `sales` (the `/sales`
inbox: templates/, static/), `inbox` (handoffs as both show them, and the
sales actions), `tracking` (`/t/c`, `/t/o`), `pages` (`/u`, `/v`),
`webhooks` and `providers` (ESP reports), `auth`, `bodies`, `schemas`,
`context`, `sends` (email events for a send), `server`, `commands`.

Names are imported lazily: `nurture.cli` imports `nurture.web.commands` at
start-up, and no other command should pay for importing FastAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nurture.web.app import create_app
    from nurture.web.server import serve_in_thread

__all__ = ["create_app", "serve_in_thread"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from nurture.web.app import create_app

        return create_app
    if name == "serve_in_thread":
        from nurture.web.server import serve_in_thread

        return serve_in_thread
    raise AttributeError(f"module 'nurture.web' has no attribute {name!r}")
