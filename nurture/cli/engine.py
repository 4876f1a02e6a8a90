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

#: `nurture worker`'s defaults (benchmarks/send_throughput.py measures them).
WORKER_PROCESSES = 2
WORKER_THREADS = 4


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
        processes: Annotated[int, typer.Option(help="Worker processes.")] = WORKER_PROCESSES,
        threads: Annotated[int, typer.Option(help="Threads per process.")] = WORKER_THREADS,
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
        days: Annotated[float, typer.Option(help="Virtual days, ending now.")] = 60,
        seed: Annotated[int, typer.Option(help="Seed for contacts and reactions.")] = 42,
        folder: Annotated[
            Path,
            typer.Option(
                "--dir",
                help="The demo's own folder: project copy, contacts, database, outbox "
                "(an earlier demo's is replaced).",
            ),
        ] = Path("nurture-demo"),
    ) -> None:
        """The example program end to end: synthetic contacts over the last 60 days, emails,
        database and project kept in ./nurture-demo to explore with the other commands."""
        import time

        import nurture.tools.output as output
        from nurture.definitions.loader import load_project
        from nurture.tools.demo import find_example_project, prepare_folder, write_contacts
        from nurture.tools.reactions import load_reactions
        from nurture.tools.simulate import Simulation
        from nurture.transports import OutboxTransport

        with cli.reported():
            demo_folder = prepare_folder(folder, find_example_project())
            loaded = load_project(demo_folder.root)
            reactions_file = demo_folder.root / "examples" / "reactions.yaml"
            began = time.monotonic()
            write_contacts(demo_folder.contacts, contacts, seed)
            start = _demo_start(days)
            simulation = Simulation(
                loaded,
                start=start,
                days=days,
                seed=seed,
                reactions=load_reactions(reactions_file) if reactions_file.is_file() else (),
                # A folder of its own, rewritten on each run: no fsync per file.
                transport=OutboxTransport(demo_folder.outbox, fsync=False),
                database=demo_folder.database,
            )
            result = simulation.run(demo_folder.contacts, None)
            cli.console.print(
                f"[bold]nurture demo[/bold]: {contacts} contacts, {days:g} virtual days, "
                f"in {folder}"
            )
            output.print_journeys(cli.console, result.records)
            output.print_summary(cli.console, result)
            written, to_sales = demo_folder.written()
            split = f" ({written - to_sales} to contacts, {to_sales} to sales)" if to_sales else ""
            cli.console.print(
                f"\n[green]✓[/green] {written} emails written{split} to "
                f"{demo_folder.outbox.resolve()} in {time.monotonic() - began:.1f}s"
            )
            showcase = output.most_varied(result.records, 1)
            _print_next(folder, loaded.workflows, showcase[0] if showcase else None, start)


def _demo_start(days: float) -> Any:
    """07:00 UTC, `days` before now or a little more: the demo's days end before now, so
    what it leaves reads as the recent past to `explain`, `report` and `handoffs`."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    start = (now - timedelta(days=days)).replace(hour=7, minute=0, second=0, microsecond=0)
    return start if start + timedelta(days=days) <= now else start - timedelta(days=1)


def _print_next(folder: Path, workflows: Any, contact: str | None, start: Any) -> None:
    """The commands to try on the demo's data, each working when pasted as printed."""
    import math
    import shlex
    from datetime import UTC, datetime

    import nurture.cli.common as cli

    nurture = cli.shell_command("nurture")
    since = math.ceil((datetime.now(UTC) - start).total_seconds() / 86400)
    workflow = "lead-nurture" if "lead-nurture" in workflows else next(iter(workflows), None)
    lines = [(f"cd {shlex.quote(str(folder))}", "the demo's project, database and outbox")]
    if contact is not None:
        lines.append((f"{nurture} explain {contact}", "one contact's stages, score and emails"))
    lines.append((f"{nurture} report --since {since}d", "the funnel over the demo's days"))
    lines.append((f"{nurture} handoffs list", "what sales received"))
    if workflow is not None:
        lines.append((f"{nurture} graph {workflow}", "a workflow, with who is on each step"))
    width = max(len(command) for command, _ in lines)
    cli.console.print("\n[bold]Next, on the demo's data[/bold] (kept in its folder):")
    for command, why in lines:
        cli.console.print(f"  {command:<{width}}  # {why}", markup=False, soft_wrap=True)


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
