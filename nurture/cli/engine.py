"""The commands that run the engine: `nurture run`, `worker`, `scheduler`,
`simulate` and `demo`.

Registered on the main Typer app by `nurture.cli.app` (`register`); each is a
few lines over `nurture.cli.run`, Dramatiq's CLI or `nurture.tools.simulate`,
which the tests call directly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nurture.cli.common import ProjectDir
from nurture.errors import ConfigurationError, NurtureError
from nurture.settings import get_settings


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    @app.command()
    def run(
        threads: Annotated[int, typer.Option(help="Worker threads.")] = 2,
        interval: Annotated[float, typer.Option(help="Seconds between scheduler ticks.")] = 1.0,
        host: Annotated[str, typer.Option(help="Web app interface.")] = "127.0.0.1",
        port: Annotated[
            int, typer.Option(help="Web app port (tracking, unsubscribe, API).")
        ] = 8000,
        web: Annotated[bool, typer.Option(help="Serve the web app in this process too.")] = True,
        project: ProjectDir = None,
    ) -> None:
        """Everything in one process: scheduler, workers and the web app, in-process broker."""
        from nurture.cli.run import run_embedded

        with cli.reported():
            settings = cli.settings_for(project)
            cli.configure_logging()

            def announce() -> None:
                cli.errors.print(
                    f"nurture running on {cli.safe_url(settings.database_url)}; emails to "
                    f"{'SMTP' if settings.smtp_url else settings.outbox_dir}; Ctrl-C to stop"
                )

            run_embedded(
                settings,
                threads=threads,
                interval=interval,
                web=(host, port) if web else None,
                on_ready=announce,
            )

    @app.command()
    def worker(
        processes: Annotated[int, typer.Option(help="Worker processes.")] = 2,
        threads: Annotated[int, typer.Option(help="Threads per process.")] = 4,
        project: ProjectDir = None,
    ) -> None:
        """Dramatiq worker processes on Redis (NURTURE_REDIS_URL)."""
        import os

        # An idle consumer polls Redis every 100 ms instead of Dramatiq's 1 s, so an event
        # that wakes a workflow is acted on in well under a second (benchmarks/ingest.py).
        # Read when dramatiq.worker is first imported, here and in the worker processes.
        os.environ.setdefault("dramatiq_worker_timeout", "100")
        from dramatiq.cli import main as dramatiq_main

        with cli.reported():
            settings = _with_redis(project, "a separate worker needs Redis")
            settings.signing_key()
            sys.argv = [
                "nurture worker",
                "nurture.engine.actors",
                "--processes",
                str(processes),
                "--threads",
                str(threads),
                "--queues",
                "nurture",
            ]
            raise typer.Exit(dramatiq_main())  # type: ignore[no-untyped-call]

    @app.command()
    def scheduler(
        interval: Annotated[float, typer.Option(help="Seconds between ticks.")] = 1.0,
        project: ProjectDir = None,
    ) -> None:
        """Find due enrollments and sends in the database and dispatch them to the workers."""
        from nurture.cli.run import run_scheduler

        with cli.reported():
            settings = _with_redis(project, "a separate scheduler needs Redis to reach the workers")
            cli.configure_logging()
            run_scheduler(settings, interval)

    @app.command()
    def simulate(
        directory: Annotated[Path | None, typer.Argument(help="Project folder.")] = None,
        contacts: Annotated[Path, typer.Option(help="Contacts file (CSV or JSON Lines).")] = ...,  # type: ignore[assignment]
        events: Annotated[
            Path | None, typer.Option(help="Events, JSON Lines; 'at' may be +3d.")
        ] = None,
        reactions: Annotated[Path | None, typer.Option(help="Synthetic engagement (YAML).")] = None,
        seed: Annotated[int, typer.Option(help="Seed for the reactions.")] = 0,
        start: Annotated[
            str | None, typer.Option(help="Start time, ISO 8601 (default: now).")
        ] = None,
        days: Annotated[float, typer.Option(help="How long to simulate.")] = 30,
        json_lines: Annotated[
            bool, typer.Option("--json", help="One JSON object per line.")
        ] = False,
    ) -> None:
        """The real engine under a virtual clock: every send, exit and stage change, in order."""
        import nurture.clock as clock
        import nurture.tools.output as output
        from nurture.definitions.loader import load_project
        from nurture.tools.reactions import load_reactions
        from nurture.tools.simulate import Simulation

        with cli.reported():
            loaded = load_project(cli.project_dir(directory))
            moment = _start(start) if start else clock.now()
            emit = (
                (lambda r: typer.echo(json.dumps(r.as_json(), ensure_ascii=False)))
                if json_lines
                else None
            )
            simulation = Simulation(
                loaded,
                start=moment,
                days=days,
                seed=seed,
                reactions=load_reactions(reactions) if reactions else (),
                on_record=emit,
            )
            result = simulation.run(contacts, events)
            for problem in result.import_problems:
                cli.errors.print(str(problem), markup=False)
            if not json_lines:
                output.print_timeline(cli.console, result.records)
                output.print_summary(cli.console, result)

    @app.command()
    def demo(
        contacts: Annotated[int, typer.Option(help="Synthetic contacts.")] = 500,
        days: Annotated[float, typer.Option(help="Virtual days.")] = 60,
        seed: Annotated[int, typer.Option(help="Seed for contacts and reactions.")] = 42,
    ) -> None:
        """The example program end to end: synthetic contacts, 60 virtual days, emails in ./outbox."""
        import tempfile
        import time
        from datetime import UTC, datetime

        import nurture.tools.output as output
        from nurture.definitions.loader import load_project
        from nurture.tools.demo import find_example_project, write_contacts
        from nurture.tools.reactions import load_reactions
        from nurture.tools.simulate import Simulation
        from nurture.transports import OutboxTransport

        with cli.reported():
            root = find_example_project()
            loaded = load_project(root)
            outbox = get_settings().outbox_dir
            reactions_file = root / "examples" / "reactions.yaml"
            began = time.monotonic()
            with tempfile.TemporaryDirectory(prefix="nurture-demo-") as folder:
                people = Path(folder) / "contacts.csv"
                write_contacts(people, contacts, seed)
                start = datetime.now(UTC).replace(hour=7, minute=0, second=0, microsecond=0)
                simulation = Simulation(
                    loaded,
                    start=start,
                    days=days,
                    seed=seed,
                    reactions=load_reactions(reactions_file) if reactions_file.is_file() else (),
                    transport=OutboxTransport(outbox),
                )
                result = simulation.run(people, None)
            cli.console.print(
                f"[bold]nurture demo[/bold]: {contacts} contacts, {days:g} virtual days, project {root}"
            )
            output.print_journeys(cli.console, result.records)
            output.print_summary(cli.console, result)
            sent = sum(result.sent_by_template.values())
            cli.console.print(
                f"\n[green]✓[/green] {sent} emails written to {outbox.resolve()} "
                f"in {time.monotonic() - began:.1f}s"
            )


def _start(text: str) -> Any:
    from datetime import datetime

    import nurture.clock as clock

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise NurtureError(f"--start: not an ISO 8601 time: {text!r}") from None
    return clock.as_utc(moment)


def _with_redis(project: Path | None, why: str) -> Any:
    """The settings of a process that only works over Redis (`worker`, `scheduler`)."""
    import nurture.cli.common as cli

    settings = cli.settings_for(project)
    if not settings.redis_url:
        raise ConfigurationError(
            f"NURTURE_REDIS_URL: {why}; "
            "without it use 'nurture run' (scheduler and workers in one process)"
        )
    return settings
