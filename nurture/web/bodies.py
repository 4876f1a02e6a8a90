"""Reading JSON request bodies strictly, with reasons a client can act on.

The API routes read their body themselves rather than through a pydantic model:
a batch must answer item by item (a bad event next to good ones is refused
alone), which a model validating the whole body at once cannot do. What is
refused here is the request as a whole: not JSON (415), too large (413),
malformed (400), too many items (400).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import HTTPException, Request, status

#: Largest body accepted (bytes): 1,000 events of a few kB each.
MAX_BODY = 5 * 1024 * 1024
#: Most items in one batch request.
MAX_ITEMS = 1000


def is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    """The raw body, refused with 413 past `limit` (checked while reading)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(body: bytes) -> Any:
    """Strict JSON (no NaN/Infinity); 400 with the parser's reason otherwise."""
    try:
        return json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "malformed JSON: not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"malformed JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
        ) from None
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed JSON: {reason}") from None


async def read_json(request: Request) -> Any:
    """The body as JSON: 415 unless declared JSON, then 413 / 400 as above."""
    if not is_json(request.headers.get("content-type")):
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json"
        )
    return parse_json(await read_body(request))


async def read_items(request: Request, what: str, limit: int = MAX_ITEMS) -> list[Any]:
    """A JSON body holding one object or a list of them, as a list."""
    data = await read_json(request)
    items = data if isinstance(data, list) else [data]
    if not items:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"an empty list: send at least one {what}")
    if len(items) > limit:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            f"{len(items)} {what}s in one request; at most {limit}: split the batch",
        )
    return items
