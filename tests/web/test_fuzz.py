"""Schemathesis over the OpenAPI document: never a 5xx, and the schema tells the truth.

Every operation, with a valid API key, positive and negative cases, a fixed
seed and a bounded number of examples (the suite stays fast and a failure
repeats). Every check schemathesis has runs: no server error, the status
codes, content types, headers and bodies the schema documents, schema-valid
input accepted and schema-violating input refused. One allowance: the two
batch endpoints may answer 422 to a schema-valid body, because they refuse
item by item for reasons no schema can hold (an event for a contact id that
does not exist, an email event for an address never emailed, a time in the
future); they say each item's reason. The webhook bodies schemathesis makes
up are also sent correctly signed to both providers, so their parsers are
fuzzed past the signature check.

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
from hypothesis import HealthCheck, seed, settings
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance
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


schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

#: Refused item by item, for reasons beyond the schema (see the module docstring).
BATCHES = {"/v1/events", "/v1/contacts"}


@schema.parametrize()  # type: ignore[untyped-decorator]
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@seed(20261202)
def test_the_api_keeps_to_its_schema(case: Any, web: Web) -> None:
    excluded = [positive_data_acceptance] if case.path in BATCHES else []
    response = case.call(app=web.app, headers={"Authorization": f"Bearer {API_KEY}"})
    case.validate_response(response, excluded_checks=excluded)
    if case.path == "/v1/webhooks/{provider}":
        try:
            json.dumps(case.body)
        except (TypeError, ValueError):
            return
        for provider in ("generic", "mailgun"):
            signed = _post_signed(web, provider, case.body)
            assert signed.status_code < 500, signed.text
