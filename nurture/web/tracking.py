"""Click and open tracking: record the engagement, then get out of the way.

A tracked link's token carries the target URL, signed (`Links.click`): the
redirect goes to that URL and nowhere else. Nothing in the query string is
read, a token signed for another purpose (an open pixel, an unsubscribe link)
or with another key is refused, and so is a signed target that is not a plain
http(s) URL. Refusals are a 404 page, never a redirect: no open redirect.

Recording must never cost the reader their click or break the email's
layout: a failure to record is logged and the redirect (or pixel) is served
anyway; a send that no longer exists (its contact was erased) records nothing.
Each click and each open is its own event (`click:<send>:<uuid>`), and every
one is recorded with what the request says about who made it (`Hit`): the
ingest classifies it as a person's, a machine's or a repeat
(`nurture.lifecycle.traffic`), and only a person's first click of a link scores.
HEAD requests are answered like GET ones (link checkers use them) and recorded
as a machine's.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

import nurture.clock as clock
from nurture.delivery.links import TRACKING_DAYS
from nurture.events import EventType
from nurture.lifecycle.traffic import Hit
from nurture.tokens import InvalidToken, expired
from nurture.web.context import WebContext, web_context
from nurture.web.pages import not_found_page
from nurture.web.sends import record_for_send
from nurture.web.site import REF_PARAM, target_origin

log = logging.getLogger("nurture.web")

router = APIRouter(tags=["tracking"])

#: The classic 43-byte transparent 1×1 GIF.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
NO_CACHE = {
    "Cache-Control": "no-store, no-cache, must-revalidate, max-age=0",
    "Pragma": "no-cache",
    "Expires": "0",
}
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
MAX_URL = 8192

Context = Annotated[WebContext, Depends(web_context)]


def safe_target(url: object) -> str | None:
    """The URL if it is a plain absolute http(s) URL we may redirect to, else None."""
    if not isinstance(url, str) or len(url) > MAX_URL or _UNSAFE.search(url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return url


def _client(request: Request) -> dict[str, Any]:
    """What the raw payload keeps about who followed the link (no IP address)."""
    agent = request.headers.get("user-agent")
    facts: dict[str, Any] = {"user_agent": agent[:500]} if agent else {}
    if request.method != "GET":
        facts["method"] = request.method
    return facts


#: Headers by which browsers and mail clients say a fetch is ahead of any reader.
_PREFETCH = (("purpose", "prefetch"), ("sec-purpose", "prefetch"), ("x-moz", "prefetch"))


def hit_of(request: Request) -> Hit:
    """What this request says about who made it, for the traffic classifier."""
    headers = request.headers
    return Hit(
        method=request.method,
        user_agent=headers.get("user-agent"),
        address=request.client.host if request.client else None,
        prefetch=any(word in headers.get(name, "").lower() for name, word in _PREFETCH),
    )


@router.get(
    "/t/c/{token}",
    summary="Tracked link: record a click, redirect to the signed URL",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "To the URL signed in the token, and only that one"},
        404: {"description": "Invalid token: no redirect", "content": {"text/html": {}}},
    },
)
def click(token: str, request: Request, context: Context) -> Response:
    try:
        payload = context.signer.verify("click", token)
    except InvalidToken:
        return not_found_page()
    target = safe_target(payload.get("u"))
    send_id = payload.get("s")
    if target is None or not isinstance(send_id, int) or isinstance(send_id, bool):
        return not_found_page()
    if expired(payload, clock.now(), TRACKING_DAYS):  # still where it led; nothing recorded
        return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})
    status = None
    try:
        status = record_for_send(
            context,
            send_id,
            event_type=EventType.EMAIL_CLICKED,
            event_id=f"click:{send_id}:{uuid.uuid4()}",
            properties={"url": target},
            raw={"via": "click", "send_id": send_id, "url": target, **_client(request)},
            hit=hit_of(request),
        )
    except Exception:
        log.exception("could not record a click on send %s", send_id)
    if status == "recorded" and request.method == "GET":
        target = _with_reference(context, target, send_id)
    return RedirectResponse(target, status_code=302, headers={"Cache-Control": "no-store"})


def _with_reference(context: WebContext, target: str, send_id: int) -> str:
    """A person's click to one of `tracking.sites`: the redirect carries an opaque
    reference to the contact for the website script (never for a machine's or a
    repeat click, so a gateway's browser is never taken for the contact)."""
    if target_origin(target) not in context.engine.project.config.tracking.sites:
        return target
    try:
        link = context.website.link_for(send_id, clock.now())
    except Exception:
        log.exception("could not make a website reference for send %s", send_id)
        return target
    if link is None:
        return target
    parts = urlsplit(target)
    reference = urlencode({REF_PARAM: context.signer.sign("visitor", {"l": link})})
    query = f"{parts.query}&{reference}" if parts.query else reference
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@router.get(
    "/t/o/{token}.gif",
    summary="Open pixel: record an open, answer a transparent GIF",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "Always the 1×1 GIF"}},
)
def open_pixel(token: str, request: Request, context: Context) -> Response:
    """Always the pixel, whatever the token: a broken image would show in the email."""
    try:
        payload = context.signer.verify("open", token)
        send_id = None if expired(payload, clock.now(), TRACKING_DAYS) else payload.get("s")
    except InvalidToken:
        send_id = None
    if isinstance(send_id, int) and not isinstance(send_id, bool):
        try:
            record_for_send(
                context,
                send_id,
                event_type=EventType.EMAIL_OPENED,
                event_id=f"open:{send_id}:{uuid.uuid4()}",
                raw={"via": "open", "send_id": send_id, **_client(request)},
                hit=hit_of(request),
            )
        except Exception:
            log.exception("could not record an open of send %s", send_id)
    return Response(PIXEL, media_type="image/gif", headers=NO_CACHE)


# Link checkers ask with HEAD: the same answer, recorded as a machine's (not in the schema).
router.add_api_route("/t/c/{token}", click, methods=["HEAD"], include_in_schema=False)
router.add_api_route("/t/o/{token}.gif", open_pixel, methods=["HEAD"], include_in_schema=False)
