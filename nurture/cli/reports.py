"""`nurture report`: the funnel, time in stage, handoffs, emails and scoring calibration.

Registered on the main Typer app by `nurture.cli.app` (`register`). The figures
come from `nurture.tools.reports.build_report`; rich tables for people, `--json`
for tools, `--html FILE` for one self-contained page (`nurture.tools.report_html`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from nurture.cli.common import ProjectDir
from nurture.errors import NurtureError
from nurture.tools.reports import parse_moment


def register(app: typer.Typer) -> None:
    import nurture.cli.common as cli

    @app.command()
    def report(
        since: Annotated[
            str, typer.Option(help="Start of the period: a duration before now (30d) or ISO.")
        ] = "30d",
        until: Annotated[
            str | None, typer.Option(help="End of the period (ISO; default: now).")
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")] = False,
        html: Annotated[
            Path | None,
            typer.Option(
                "--html",
                help="Write a self-contained HTML report with charts to this file "
                "instead of printing the tables.",
            ),
        ] = None,
        project: ProjectDir = None,
    ) -> None:
        """Funnel, conversion, time in stage, handoffs, per-email stats and score calibration."""
        import nurture.clock as clock
        from nurture.lifecycle.handoff.readers import timezone_for
        from nurture.tools.report_html import render_html
        from nurture.tools.reports import build_report

        with cli.reported():
            now = clock.now()
            start = parse_moment(since, now, "--since")
            end = parse_moment(until, now, "--until") if until else now
            if start >= end:
                raise NurtureError("--since must be before --until")
            runtime = cli.open_runtime(project)
            with runtime.sessions() as session:
                data = build_report(session, runtime.project, start, end, now)
                zone = timezone_for(session, runtime.project.config, None)
            if html is not None:
                html.write_text(render_html(data, zone), encoding="utf-8")
            if as_json:
                typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
            elif html is None:
                print_report(data, zone)
            if html is not None:
                # Beside --json, on stderr: stdout stays one JSON object.
                said = cli.errors if as_json else cli.console
                said.print(f"[green]✓[/green] report written to {html}", soft_wrap=True)


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def _dur(seconds: float | None) -> str:
    from nurture.tools.report_html import duration

    return duration(seconds)


def print_report(data: dict[str, Any], timezone: str = "UTC") -> None:
    import nurture.cli.common as cli
    import nurture.readable as readable

    def when(value: str) -> str:
        return readable.local_time(value, timezone, readable.CLI_LANGUAGE, year=True)

    console = cli.console
    period = data["period"]
    console.print(
        f"[bold]nurture report[/bold] {when(period['since'])} → {when(period['until'])}"
        f" (times in {timezone})"
    )
    conversion = {row["from"]: row for row in data["conversion"]}
    funnel = Table(title="Funnel (cohort conversion to the next stage or beyond)")
    for name in ("stage", "contacts now", "entered", "went on", "conversion"):
        funnel.add_column(name, justify="left" if name == "stage" else "right")
    for s in data["stages"]:
        step = conversion.get(s["stage"])
        funnel.add_row(
            s["stage"],
            str(s["contacts"]),
            str(s["entered"]),
            str(step["converted"]) if step else "",
            f"{_pct(step['rate'])} → {step['to']}" if step else "",
        )
    console.print(funnel)

    times = Table(title="Time in stage (stays begun in the period; open ones up to now)")
    for name in ("stage", "stays", "open", "mean", "median"):
        times.add_column(name, justify="left" if name == "stage" else "right")
    for t in data["time_in_stage"]:
        times.add_row(
            t["stage"],
            str(t["stays"]),
            str(t["open"]),
            _dur(t["mean_seconds"]),
            _dur(t["median_seconds"]),
        )
    console.print(times)

    h = data["handoffs"]
    handoffs = Table(title="Sales handoffs opened in the period")
    for name in (
        "opened",
        "accepted",
        "rejected",
        "open",
        "acceptance",
        "to accept (mean)",
        "median",
    ):
        handoffs.add_column(name, justify="right")
    handoffs.add_row(
        str(h["created"]),
        str(h["accepted"]),
        str(h["rejected"]),
        str(h["open"]),
        _pct(h["acceptance_rate"]),
        _dur(h["time_to_accept"]["mean_seconds"]),
        _dur(h["time_to_accept"]["median_seconds"]),
    )
    console.print(handoffs)

    calibration = Table(
        title=f"Scoring calibration (threshold {data['calibration']['threshold']:g})"
    )
    for name in ("score at handoff", "accepted", "rejected", "acceptance", "mean score"):
        calibration.add_column(name, justify="left" if name == "score at handoff" else "right")
    for b in data["calibration"]["bands"]:
        calibration.add_row(
            b["band"],
            str(b["accepted"]),
            str(b["rejected"]),
            _pct(b["acceptance_rate"]),
            "–" if b["mean_score"] is None else readable.score(b["mean_score"]),
        )
    console.print(calibration)

    from nurture.tools.report_html import signals_apart

    for title, rows, key in (
        ("Workflows", data["workflows"], "workflow"),
        ("Emails (rates over sent; opens and clicks once per email)", data["emails"], "template"),
    ):
        table = Table(title=title)
        table.add_column(key)
        if key == "template":
            table.add_column("workflow")
        for name in ("sent", "delivered", "opened", "clicked", "machine o/c", "repeat o/c"):
            table.add_column(name, justify="right")
        for name in ("unsubscribed", "bounced"):
            table.add_column(name, justify="right")
        for r in rows:
            cells = [r[key]] + ([r["workflow"] or ""] if key == "template" else [])
            cells.append(str(r["sent"]))
            for name in ("delivered", "opened", "clicked"):
                cells.append(f"{r[name]} {_pct(r['rates'][name])}")
            cells += [signals_apart(r["machine"]), signals_apart(r["repeat"])]
            for name in ("unsubscribed", "bounced"):
                cells.append(f"{r[name]} {_pct(r['rates'][name])}")
            table.add_row(*cells)
        console.print(table)
    console.print(
        "Opened and clicked: a person's signals (the rates too). machine o/c: emails a mail "
        "gateway, link scanner or image proxy opened / clicked (no points, no wait ended); "
        "repeat o/c: emails a person opened / clicked again.",
        markup=False,
    )
    if data.get("experiments"):
        print_experiments(data["experiments"])


def _points(difference: dict[str, float] | None) -> str:
    """`+5.2 pts [+1.0, +9.4] p=0.012`: a difference of rates, its 95 % interval, its p-value."""
    if difference is None:
        return "–"
    d, low, high = (difference[k] * 100 for k in ("difference", "low", "high"))
    p = difference["p_value"]
    return f"{d:+.1f} pts [{low:+.1f}, {high:+.1f}] " + ("p<0.001" if p < 0.001 else f"p={p:.3f}")


METRIC_LABELS = {
    "human_opens": "opens",
    "human_clicks": "clicks",
    "unsubscribes": "unsubscribes",
    "reached_stage": "reached stage",
}


def print_experiments(experiments: list[dict[str, Any]]) -> None:
    """Variant tests, splits and holdouts: counts, rates, differences with 95 % intervals."""
    import nurture.cli.common as cli

    console = cli.console
    for x in experiments:
        where = f"{x['workflow']}/{x['step']}" if x.get("step") else x["workflow"]
        if x["kind"] == "variants":
            won = x["winner"]
            verdict = (
                f"winner: {won['variant']} (on {won['metric']}, {won['decided_at'][:16]})"
                if won
                else "no winner yet"
            )
            better = "lower" if x["lower_is_better"] else "higher"
            table = Table(title=f"A/B test {where}: {x['metric']} ({better} is better); {verdict}")
            metrics = [k for k in METRIC_LABELS if k in x["variants"][0]] if x["variants"] else []
            for name in ("variant", "template", "sent", *(METRIC_LABELS[k] for k in metrics)):
                table.add_column(
                    name, justify="left" if name in ("variant", "template") else "right"
                )
            table.add_column(
                f"{x['metric']} vs {x['variants'][0]['variant']} (95% CI)", justify="right"
            )
            for v in x["variants"]:
                table.add_row(
                    v["variant"],
                    v["template"],
                    str(v["sent"]),
                    *(f"{v[k]} {_pct(v['rates'][k])}" for k in metrics),
                    _points(v["difference"]) if v["difference"] else "",
                )
        else:
            rows = x["arms"] if x["kind"] == "split" else x["groups"]
            title = (
                f"Split {where}: contacts who moved up a stage after drawing their arm"
                if x["kind"] == "split"
                else f"Holdout {where} ({x['share']:.0%}): lift on moving up a stage "
                f"{_points(x['lift'])}"
            )
            table = Table(title=title)
            for name in ("arm", "contacts", "moved up", "vs first (95% CI)"):
                table.add_column(name, justify="left" if name == "arm" else "right")
            for r in rows:
                table.add_row(
                    r["arm"],
                    str(r["contacts"]),
                    f"{r['converted']} {_pct(r['rate'])}",
                    _points(r["difference"]) if r["difference"] else "",
                )
        console.print(table)
