"""The website script's two routes: `GET /t/nurture.js` and its beacon, `POST /t/s`.

What the script reports is taken only from the sites listed in
`tracking.sites` (the request's `Origin`), never from a browser that asks not
to be tracked (`DNT: 1`, `Sec-GPC: 1`) or a bot, at most `RATE` per browser
and `ADDRESS_RATE` per address; a refused beacon is answered without saying
more than needed. The lifecycle side (`nurture.lifecycle.website`) records it.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.concurrency import run_in_threadpool
from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

import nurture.clock as clock
from nurture.addresses import canonical_email
from nurture.contacts.values import value_problem
from nurture.definitions.tracking import site_origin
from nurture.lifecycle.traffic import machine_agent
from nurture.tokens import InvalidToken
from nurture.web.context import WebContext, web_context

log = logging.getLogger("nurture.web")

router = APIRouter(tags=["website"])
Context = Annotated[WebContext, Depends(web_context)]

#: Page views a browser may report, and beacons an address may send.
RATE = parse("60/minute")
ADDRESS_RATE = parse("600/minute")
MAX_BEACON = 4096
_BROWSER_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_limiter = MovingWindowRateLimiter(MemoryStorage())

#: The reference a tracked click appends to a redirect to one of the sites.
REF_PARAM = "nurture_ref"


def _script() -> bytes:
    return resources.files("nurture.web").joinpath("static/nurture.js").read_bytes()


@router.get(
    "/t/nurture.js",
    summary="The website script: page views and forms of the sites in tracking.sites",
    response_class=Response,
    responses={200: {"content": {"application/javascript": {}}, "description": "The script"}},
)
def script() -> Response:
    return Response(
        _script(),
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


@router.options("/t/s", include_in_schema=False)
def beacon_preflight(request: Request, context: Context) -> Response:
    origin = _allowed_origin(request, context)
    if origin is None:
        return Response(status_code=403)
    return Response(
        status_code=204,
        headers={
            **_cors(origin),
            "Access-Control-Allow-Methods": "POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "86400",
        },
    )


@router.post(
    "/t/s",
    summary="The website script's beacon: a page view or a form of one browser",
    status_code=204,
    response_class=Response,
    responses={
        204: {
            "description": "Taken (or, for a bot or a browser asking not to be tracked, ignored)"
        },
        400: {"description": "Not a beacon of nurture.js"},
        403: {"description": "The Origin is not one of tracking.sites"},
        429: {"description": "Too many beacons from this browser or address"},
    },
)
async def beacon(request: Request, context: Context) -> Response:
    origin = _allowed_origin(request, context)
    if origin is None:
        return Response("origin not in tracking.sites", status_code=403, media_type="text/plain")
    headers = _cors(origin)
    body = await request.body()
    if request.headers.get("dnt") == "1" or request.headers.get("sec-gpc") == "1":
        return Response(status_code=204, headers=headers)
    if machine_agent(request.headers.get("user-agent") or "") is not None:
        return Response(status_code=204, headers=headers)
    data = _beacon(body, origin)
    if isinstance(data, str):
        return Response(data, status_code=400, headers=headers, media_type="text/plain")
    browser = data["v"]
    address = request.client.host if request.client else "?"
    if not _limiter.hit(ADDRESS_RATE, "address", address) or not _limiter.hit(
        RATE, "browser", browser
    ):
        return Response(
            "too many beacons", status_code=429, headers=headers, media_type="text/plain"
        )
    await run_in_threadpool(_record, context, data, request.headers.get("user-agent"))
    return Response(status_code=204, headers=headers)


def _record(context: WebContext, data: dict[str, Any], agent: str | None) -> None:
    now = clock.now()
    website = context.website
    form = data.get("form")
    if isinstance(form, dict):
        properties = {
            key: form[key]
            for key in ("form_id", "consent", "consent_text")
            if isinstance(form.get(key), str)
        }
        properties |= {"url": data["url"], **({"user_agent": agent[:300]} if agent else {})}
        website.form(data["v"], form["email"], properties, now)
        return
    link = None
    if isinstance(data.get("ref"), str):
        try:
            link = context.signer.verify("visitor", data["ref"]).get("l")
        except InvalidToken:
            link = None
    page = {key: data[key] for key in ("url", "title", "referrer", "site") if data.get(key)}
    website.page_view(data["v"], page, now, link if isinstance(link, str) else None)


def _beacon(body: bytes, origin: str) -> dict[str, Any] | str:
    """The beacon as a dict, or why it is not one."""
    if len(body) > MAX_BEACON:
        return f"a beacon is at most {MAX_BEACON} bytes"
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return "a beacon is a JSON object"
    if not isinstance(data, dict) or value_problem(data):
        return "a beacon is a JSON object of text values"
    if not isinstance(data.get("v"), str) or not _BROWSER_ID.match(data["v"]):
        return "'v' must be the browser id of nurture.js"
    url = data.get("url")
    if not isinstance(url, str) or target_origin(url) != origin:
        return "'url' must be a page of the site sending the beacon"
    for key in ("title", "referrer", "site", "ref"):
        if key in data and not isinstance(data[key], str):
            return f"'{key}' must be text"
    form = data.get("form")
    if form is not None:
        given = form.get("email") if isinstance(form, dict) else None
        email = canonical_email(given) if isinstance(given, str) else None
        if email is None:
            return "'form.email' must be an email address"
        form["email"] = email
        if form.get("consent") not in (None, "granted", "withdrawn"):
            return "'form.consent' must be granted or withdrawn"
    return data


def _allowed_origin(request: Request, context: WebContext) -> str | None:
    origin = request.headers.get("origin")
    sites = context.engine.project.config.tracking.sites
    if not origin:
        return None
    normal = site_origin(origin)
    return normal if normal is not None and normal in sites else None


def target_origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, or None."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return f"{parts.scheme}://{parts.hostname}" + (f":{port}" if port else "")


def _cors(origin: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
