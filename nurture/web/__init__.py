"""The HTTP side of nurture: JSON API, sales inbox, tracking, unsubscribe, ESP webhooks (FastAPI).

`nurture.web.app.create_app(engine, settings)` builds the app;
`nurture.web.server.serve_in_thread` hosts it in another process's thread.
Modules: `app` (factory, health), `api` (`/v1` events and contacts),
`handoff_api` (`/v1/handoffs`), `sales` (the `/sales` inbox: templates/,
static/), `inbox` (handoffs as both show them, and the sales actions),
`tracking` (`/t/c`, `/t/o`), `pages` (`/u`, `/v`), `webhooks` and `providers`
(ESP reports), `auth`, `bodies`, `schemas`, `context`, `sends` (email events
for a send), `server`.

This file imports nothing, so no command that never serves pays for FastAPI.
"""
