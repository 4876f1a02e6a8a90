"""Serving: a real uvicorn in a thread (what `nurture run` will host), the CLI command."""

from __future__ import annotations

import json
import urllib.request

from typer.testing import CliRunner

from nurture.cli.app import app as cli
from nurture.web.server import bound_port, serve_in_thread
from tests.web.conftest import Web


def test_serve_in_thread_listens_and_stops(web: Web) -> None:
    server, thread = serve_in_thread(web.app, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{bound_port(server)}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            assert json.loads(response.read()) == {"status": "ok"}
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_the_serve_command_is_registered() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output and "--host" in result.output
    assert "--project" in result.output
