"""`nurture serve`: the HTTP API, tracking links, unsubscribe pages and webhooks.

Registered on the main Typer app by `nurture.cli.app` (`register(app)`), so the web
dependencies are imported only when the command runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
        project: Annotated[
            Path | None,
            typer.Option(
                "--project",
                "-p",
                help="The nurture project folder (default: NURTURE_PROJECT_DIR, else the current folder).",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """HTTP API, click/open tracking, unsubscribe and ESP webhooks (OpenAPI at /docs)."""
        import nurture.cli.common as cli
        from nurture.engine.factory import build_engine
        from nurture.engine.runtime import settle_heap
        from nurture.web.app import create_app
        from nurture.web.server import serve as run_server

        with cli.reported():
            settings = cli.settings_for(project)
            engine = build_engine(settings)
            app_ = create_app(engine, settings)
            settle_heap()
            cli.configure_logging()
            if not settings.api_key_list:
                cli.errors.print(
                    "[yellow]warning:[/yellow] NURTURE_API_KEYS is not set: every /v1 API "
                    "call will be refused (tracking, unsubscribe and webhooks still work)"
                )
            cli.errors.print(
                f"nurture serving on http://{host}:{port} (OpenAPI at /docs); "
                f"links point to {settings.base_url}; Ctrl-C to stop"
            )
            run_server(app_, host, port)
