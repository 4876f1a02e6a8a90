"""The web app factory: API, tracking, unsubscribe and webhooks around one engine.

`create_app(engine, settings)` builds a FastAPI app from live objects rather
than reading the environment, so `nurture serve`, `nurture run` (in-process,
see `server.serve_in_thread`) and the tests (an engine on a throwaway SQLite
database with the capture transport) all serve the same routes. The engine
must be able to sign (`build_engine` gives it the signing key), since the
tracking and unsubscribe links it verifies were signed with that key.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline

from nurture.engine.service import Engine
from nurture.settings import Settings
from nurture.store import db
from nurture.web import (
    accounts_page,
    api,
    handoff_api,
    limits,
    metrics,
    pages,
    report_page,
    sales,
    sales_login,
    site,
    tracking,
    webhooks,
)
from nurture.web.context import WebContext
from nurture.web.schemas import Health

log = logging.getLogger("nurture.web")
#: Where /docs loads Swagger UI's files from (`fastapi-offline` ships them).
DOCS_ASSETS = "/docs/assets"

DESCRIPTION = """\
Email nurturing workflows as code.

- **`/v1/*`** (except webhooks): an API key, as `Authorization: Bearer <key>`
  or `X-API-Key: <key>` (NURTURE_API_KEYS). Batches answer per item: 200 when
  every item was accepted, 207 when some were refused, 422 when all were.
- **`/v1/webhooks/{provider}`**: authenticated by the provider (`generic`, `mailgun`,
  `sendgrid`, `postmark`, `brevo`, `ses`).
- **`/v1/handoffs`**: the sales handoffs: list, read, accept, reject (with a
  reason), reopen; 404 for an unknown one, 409 when its state forbids the action.
- **`/t/*`, `/u/*`, `/v/*`**: links in emails, authenticated by their signed token.
- **`/sales`**: the sales inbox (HTML pages; sign in with your account, created by
  `nurture users add`; API keys do not open it); `/sales/reports` (or `/reports`):
  the funnel report behind the same login.
- **`/healthz`**, **`/metrics`**: operations (Prometheus text format; a bearer
  token only when NURTURE_METRICS_TOKEN is set).
"""


def _version() -> str:
    try:
        return version("nurture")
    except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0"


def create_app(engine: Engine, settings: Settings) -> FastAPI:
    # Swagger UI's script and stylesheet are served from the installed package, not a CDN:
    # /docs works without internet access (a closed network, a laptop on a train).
    app = FastAPIOffline(
        title="nurture",
        version=_version(),
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        static_url=DOCS_ASSETS,
        # Nor the validator badge Swagger UI would fetch from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )
    app.state.nurture = WebContext.build(engine, settings)
    limits.install(app, settings.max_body_bytes)
    app.include_router(api.router)
    app.include_router(handoff_api.router)
    app.include_router(webhooks.router)
    app.include_router(tracking.router)
    app.include_router(site.router)
    app.include_router(pages.router)
    app.include_router(sales_login.router)
    app.include_router(accounts_page.router)
    app.include_router(sales.router)
    app.include_router(report_page.router)
    app.include_router(metrics.router)

    @app.get(
        "/healthz",
        tags=["operations"],
        summary="Liveness and database reachability",
        response_model=Health,
        responses={503: {"model": Health, "description": "The database is not reachable"}},
    )
    async def healthz() -> JSONResponse:
        def ping() -> bool:
            if db.ping(engine.sessions):
                return True
            log.error("health check: the database is not reachable")
            return False

        if await run_in_threadpool(ping):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "unavailable"}, status.HTTP_503_SERVICE_UNAVAILABLE)

    return app
