"""Unit tests talk to no service: no PostgreSQL, no Redis, no SMTP server, no browser.

They run on SQLite files and in-memory twins (the capture transport, the stub
broker, a mock HTTP transport), so `pytest tests/unit` works on a machine with
nothing installed but Python. A test that needs a real service belongs in
`tests/integration`; asking for one here fails at once instead of skipping.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def postgres_url() -> str:
    pytest.fail("a unit test uses no PostgreSQL: move it to tests/integration")


@pytest.fixture
def smtp_server() -> None:
    pytest.fail("a unit test uses no SMTP server: move it to tests/integration")
