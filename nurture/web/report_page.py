"""The report in the web app: `/sales/reports`, behind the sales login.

The same figures and HTML as `nurture report --html` (`nurture.tools.reports`,
`nurture.tools.report_html`), inside the inbox's layout. `/reports` redirects here:
the sales session cookie is scoped to `/sales`, and the login page only ever
returns to a path under it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

import nurture.clock as clock
from nurture.contacts.values import value_problem
from nurture.errors import NurtureError
from nurture.tools.report_html import REPORT_CSS, render_body
from nurture.tools.reports import build_report, parse_moment
from nurture.web import sales
from nurture.web.context import WebContext, web_context
from nurture.web.sales_session import SalesSession, current_session

router = APIRouter(include_in_schema=False)

Context = Annotated[WebContext, Depends(web_context)]

_CSS = (
    REPORT_CSS
    + ".report-period { display: flex; gap: 1rem; align-items: center; flex-wrap: wrap; }\n"
).encode()


@router.get("/reports")
def reports_redirect(request: Request) -> Response:
    query = f"?{request.url.query}" if request.url.query else ""
    return RedirectResponse("/sales/reports" + query, 303, headers=sales.HEADERS)


@router.get("/sales/reports.css")
def stylesheet() -> Response:
    return Response(
        _CSS,
        media_type="text/css",
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )


@router.get("/sales/reports", response_class=HTMLResponse)
async def reports_page(
    request: Request, context: Context, since: str = "30d", until: str | None = None
) -> Response:
    session = await run_in_threadpool(current_session, request, context)
    if session is None:
        return sales._login_redirect(request)
    return await run_in_threadpool(_page, context, session, since, until or None)


def _page(
    context: WebContext, session: SalesSession, since: str, until: str | None
) -> HTMLResponse:
    now = clock.now()
    try:
        if value_problem(since) or (until is not None and value_problem(until)):
            raise NurtureError("invalid characters in the period")
        start = parse_moment(since, now, "since")
        end = parse_moment(until, now, "until") if until else now
        if start >= end:
            raise NurtureError("since must be before until")
    except NurtureError as exc:
        return sales.render(
            context,
            "sales/error.html",
            400,
            session=session,
            title="Période invalide",
            message=str(exc),
        )
    with context.engine.sessions() as db:
        report = build_report(db, context.engine.project, start, end, now)
    return sales.render(
        context,
        "sales/reports.html",
        session=session,
        since=since,
        until=until,
        body=render_body(report, sales.reader_timezone(context, session)),
    )
