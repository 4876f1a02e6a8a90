"""Logs carry ids, never personal data; JSON logs are one object per line."""

from __future__ import annotations

import io
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

import nurture.clock as clock
from nurture.logs import JsonFormatter, configure_nurture_json
from tests.web.conftest import CONTACTS, START, Web, event_dict

PERSONAL = ("anne@example.com", "bob@example.com", "carla@example.com", "Anne", "Atelier")


def test_a_send_and_events_log_no_personal_data(
    project_dir: Path,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    web = Web(project_dir, sessions, tmp_path)
    with clock.using(web.clock), web.client:
        web.import_rows(CONTACTS)
        web.transport.fail_next(1)  # a 451 for one of them: logged, retried
        web.tick()
        web.move_clock(minutes=5)
        web.tick()
        web.at(START + timedelta(days=2, hours=1))
        web.transport.fail_next(1, transient=False)  # a 550: logged, failed
        web.tick()
        events = [
            event_dict(id="e1"),
            event_dict(id="e2", type="email.clicked", properties={"url": "https://x.test/"}),
        ]
        assert web.client.post("/v1/events", json=events, headers=web.auth).status_code == 200
        refused = web.client.post(
            "/v1/webhooks/generic",
            content=b'{"events": []}',
            headers={"Content-Type": "application/json"},
        )
        assert refused.status_code == 401
    assert len(web.transport.messages) == 3
    records = caplog.records
    assert any("send" in r.getMessage() for r in records)  # the failures were logged
    formatter = JsonFormatter()
    for record in records:
        text = record.getMessage() + formatter.format(record) + str(record.exc_text or "")
        for value in PERSONAL:
            assert value not in text, f"{value!r} logged by {record.name}: {text}"


def test_json_lines_carry_level_logger_message_and_extras() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("nurture.test-json")
    saved = logging.getLogger("nurture").handlers[:], logging.getLogger("nurture").propagate
    configure_nurture_json(stream)
    try:
        logger.info("dispatched %d sends", 3, extra={"batch": 7})
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("tick failed")
    finally:
        root = logging.getLogger("nurture")
        root.handlers[:], root.propagate = saved
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["level"] == "info" and first["logger"] == "nurture.test-json"
    assert first["message"] == "dispatched 3 sends" and first["batch"] == 7
    assert first["ts"].startswith("20")
    assert second["level"] == "error" and "ValueError: boom" in second["exc_info"]
