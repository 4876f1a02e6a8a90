"""Schemathesis fuzzing of the OpenAPI document: whatever comes in, never a 5xx.

Every operation, with a valid API key; the webhook bodies schemathesis makes
up are also sent correctly signed to both providers, so their parsers are
fuzzed past the signature check. Bounded (a few dozen examples per
operation) to keep the suite fast.

The schema is loaded when this module is imported, from an app on a throwaway
project (the document does not depend on data), and each call goes to the
test's own app: schemathesis' lazy `from_fixture` loader does not work with
pytest 9 (it sets `Function._nodeid`, which pytest 9 removed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import tempfile
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from sqlalchemy import create_engine

import nurture.clock as clock
from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.settings import Settings
from nurture.store.db import session_factory
from nurture.tokens import Signer
from nurture.web.app import create_app
from tests.web.conftest import API_KEY, MAILGUN_KEY, WEBHOOK_SECRET, Web, write_project


def _load_schema() -> Any:
    with tempfile.TemporaryDirectory() as folder:
        project = load_project(write_project(Path(folder) / "project"))
    engine = Engine(project, session_factory(create_engine("sqlite://")), signer=Signer("s" * 32))
    app = create_app(engine, Settings(_env_file=None))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = _load_schema()


def _post_signed(web: Web, provider: str, body: Any) -> Any:
    if provider == "mailgun" and isinstance(body, dict):
        timestamp = str(int(clock.now().timestamp()))
        token = secrets.token_hex(25)
        mac = hmac.new(MAILGUN_KEY.encode(), (timestamp + token).encode(), hashlib.sha256)
        body = {
            **body,
            "signature": {"timestamp": timestamp, "token": token, "signature": mac.hexdigest()},
        }
    content = json.dumps(body).encode()
    digest = hmac.new(WEBHOOK_SECRET.encode(), content, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Nurture-Signature": f"sha256={digest}"}
    return web.client.post(f"/v1/webhooks/{provider}", content=content, headers=headers)


@schema.parametrize()  # type: ignore[untyped-decorator]
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case: Any, web: Web) -> None:
    response = case.call(app=web.app, headers={"Authorization": f"Bearer {API_KEY}"})
    case.validate_response(response, checks=[not_a_server_error])
    if case.path == "/v1/webhooks/{provider}":
        try:
            json.dumps(case.body)
        except (TypeError, ValueError):
            return
        for provider in ("generic", "mailgun"):
            signed = _post_signed(web, provider, case.body)
            assert signed.status_code < 500, signed.text
