"""Serving the app with uvicorn: in the foreground (`nurture serve`) or in a
background thread of another process (`nurture run` hosts it next to the
scheduler and workers).
"""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from fastapi import FastAPI
from uvicorn.config import LOGGING_CONFIG

#: How long `serve_in_thread` waits for the socket to be listening.
STARTUP_TIMEOUT = 10.0


def _config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    # uvicorn's defaults for proxy headers: X-Forwarded-For is believed from
    # 127.0.0.1 only (FORWARDED_ALLOW_IPS widens it), so behind a local reverse
    # proxy the sign-in limits count per real client address, and nobody else can
    # pick the address they are counted under.
    # No access log: tracking and unsubscribe URLs carry tokens that would let
    # whoever reads the log unsubscribe someone; errors are still logged.
    # When the command configured logging (`nurture.logs`: rich or JSON), uvicorn's
    # records go through it rather than through uvicorn's own text handlers.
    configured = bool(logging.getLogger().handlers)
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="info",
        server_header=False,
        access_log=False,
        log_config=None if configured else LOGGING_CONFIG,
    )


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve until interrupted (Ctrl-C, SIGTERM)."""
    uvicorn.Server(_config(app, host, port)).run()


def serve_in_thread(
    app: FastAPI, host: str = "127.0.0.1", port: int = 8000
) -> tuple[uvicorn.Server, threading.Thread]:
    """Start serving in a daemon thread; returns once it listens.

    Stop it with ``server.should_exit = True; thread.join()``. Signal handlers
    stay the host process's (uvicorn installs none outside the main thread).
    With ``port=0`` the system picks one: `bound_port(server)` says which.
    Raises `RuntimeError` if it cannot start (the port is taken, say).
    """
    server = uvicorn.Server(_config(app, host, port))
    thread = threading.Thread(target=server.run, name="nurture-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the web server could not start on {host}:{port}")
        time.sleep(0.02)
    return server, thread


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on."""
    for listener in server.servers:
        for sock in listener.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("the server is not listening")
