"""Relay pace: `nurture worker` processes sending to an SMTP relay 30 ms away.

Usage: ``python benchmarks/relay_pace.py [-n 20000] [--rate 200] [--delay 0.03]
[--workers 2] [--unlimited-emails 6000] [--connections 32]``

A relay across a network answers each command one round trip after it was
sent. The relay here is an asyncio SMTP server (its own process) that sends
every reply `--delay` seconds after the command arrived, in order, so
pipelined commands share one round trip as they would over a real link; it
offers PIPELINING, as Postfix and the ESPs do, and notes when each message
was handed over (its MAIL command arrived) and its `X-Nurture-Send-Id`.

Two runs on a throwaway PostgreSQL database (the send_throughput project:
one realistic MJML email per lead), with Redis (a dedicated, flushed
database) as the broker:

1. **limited**: `sending.rate: {per_second: --rate}`, `--workers` processes
   of `nurture worker` (4 threads each) and `nurture scheduler`, N emails.
   Prints the achieved rate (target ≥ 90 % of the limit), the busiest
   1-second window at the relay (sliding, never above the limit), and the
   emails lost (sent per the database but never received, or never sent)
   and duplicated (received twice).
2. **unlimited**: no rate, one worker process: emails/s per worker process
   over the slow relay (target ≥ 300/s).

Numbers are for one machine (2 cores here, shared by the relay, PostgreSQL,
Redis, the scheduler and the workers); compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg
import redis
from _db import temporary_database  # benchmarks/ is on sys.path when run
from send_throughput import ADMIN_URL, BASE_URL, CONFIG, SECRET, load, reset, write_project

REDIS_URL = "redis://127.0.0.1:6379/13"
_SEND_ID = re.compile(rb"^X-Nurture-Send-Id: *(\S+)", re.MULTILINE | re.IGNORECASE)


# --- the relay ------------------------------------------------------------------------


def relay(delay: float, ready: Any, stop: Any, results: Any) -> None:
    """A minimal SMTP server answering every command `delay` s after it arrived."""
    accepted: list[tuple[float, str]] = []
    # A real relay does not share the workers' CPU: ahead of them in the queue, its
    # clock readings are not late by a busy core's backlog.
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, -15)

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        replies: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def answer() -> None:
            while (item := await replies.get()) is not None:
                due, reply = item
                pause = due - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                writer.write(reply)
                await writer.drain()

        sender = asyncio.create_task(answer())
        loop_time = time.monotonic
        replies.put_nowait((loop_time() + delay, b"220 relay.example ESMTP\r\n"))
        mail_at = 0.0
        try:
            while line := await reader.readline():
                arrived = loop_time()
                verb = line[:4].upper()
                if verb in (b"EHLO", b"HELO"):
                    reply = b"250-relay.example\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 0\r\n"
                elif verb == b"DATA":
                    replies.put_nowait((arrived + delay, b"354 go ahead\r\n"))
                    data = await reader.readuntil(b"\r\n.\r\n")
                    found = _SEND_ID.search(data)
                    # When the relay got the message's MAIL command: when it was handed over.
                    accepted.append((mail_at, found.group(1).decode() if found else "?"))
                    reply = b"250 2.0.0 queued\r\n"
                    arrived = loop_time()
                elif verb == b"QUIT":
                    replies.put_nowait((arrived + delay, b"221 bye\r\n"))
                    break
                else:  # MAIL, RCPT, RSET, NOOP
                    if verb == b"MAIL":
                        mail_at = time.time()
                    reply = b"250 2.0.0 ok\r\n"
                replies.put_nowait((arrived + delay, reply))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            replies.put_nowait(None)
            await sender
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(session, "127.0.0.1", 0, backlog=512)
        ready.put(server.sockets[0].getsockname()[1])
        while not stop.is_set():
            await asyncio.sleep(0.1)
        server.close()

    asyncio.run(main())
    results.put(accepted)


# --- the measured processes ---------------------------------------------------------------


def environment(url: str, project_dir: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "NURTURE_DATABASE_URL": url,
        "NURTURE_REDIS_URL": REDIS_URL,
        "NURTURE_PROJECT_DIR": str(project_dir),
        "NURTURE_SECRET_KEY": SECRET,
        "NURTURE_BASE_URL": BASE_URL,
        "NURTURE_SMTP_URL": f"smtp://127.0.0.1:{port}?starttls=off",
    }


def run(url: str, project_dir: Path, delay: float, workers: int, expected: int) -> dict[str, Any]:
    """`nurture worker --processes W` and `nurture scheduler` until `expected` are sent."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    context = mp.get_context("spawn")
    ready, stop, results = context.Queue(), context.Event(), context.Queue()
    server = context.Process(target=relay, args=(delay, ready, stop, results))
    server.start()
    nurture = str(Path(sys.executable).with_name("nurture"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        env = environment(url, project_dir, ready.get(timeout=30))
        processes.append(
            subprocess.Popen(
                [nurture, "worker", "--processes", str(workers), "--threads", "4"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        time.sleep(4)  # the workers import, connect and warm up before work appears
        with psycopg.connect(url, autocommit=True) as watch:
            started = time.time()
            processes.append(
                subprocess.Popen(
                    [nurture, "scheduler", "--interval", "0.2"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            deadline = started + 600  # a stall shows in the statuses printed
            while _sent(watch) < expected and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1)  # late duplicates, if any, would arrive now
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        stop.set()
        accepted: list[tuple[float, str]] = results.get(timeout=60)
        server.join(timeout=30)
        client.flushdb()
        client.close()
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT status, count(*) FROM sends GROUP BY status").fetchall()
        sent_ids = {
            str(row[0]) for row in connection.execute("SELECT id FROM sends WHERE status = 'sent'")
        }
    received = [send_id for _, send_id in accepted]
    times = sorted(moment for moment, _ in accepted)
    return {
        "started": started,
        "times": times,
        "statuses": {str(status): int(n) for status, n in rows},
        "lost": len(sent_ids - set(received)) + (expected - len(sent_ids)),
        "duplicated": len(received) - len(set(received)),
    }


def _sent(connection: Any) -> int:
    row = connection.execute("SELECT count(*) FROM sends WHERE status = 'sent'").fetchone()
    return int(row[0]) if row else 0


def busiest_second(times: list[float]) -> int:
    """The most messages the relay accepted in any 1-second span (sliding)."""
    best, first = 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] >= 1.0:
            first += 1
        best = max(best, last - first + 1)
    return best


def set_rate(project_dir: Path, rate: int | None, connections: int) -> None:
    lines = [f"  connections: {connections}"]
    if rate is not None:
        lines.append(f"  rate: {{per_second: {rate}}}")
    (project_dir / "nurture.yaml").write_text(CONFIG + "\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--emails", type=int, default=20_000)
    parser.add_argument("--rate", type=int, default=200, help="sending.rate.per_second")
    parser.add_argument("--delay", type=float, default=0.03, help="the relay's round trip (s)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (limited run)")
    parser.add_argument("--unlimited-emails", type=int, default=6_000)
    parser.add_argument("--connections", type=int, default=32, help="sending.connections")
    parser.add_argument("--admin-url", default=ADMIN_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, temporary_database(args.admin_url) as url:
        from nurture.store.db import upgrade

        project_dir = Path(tmp) / "project"
        write_project(project_dir)
        upgrade(url)
        load(url, project_dir, args.emails)

        set_rate(project_dir, args.rate, args.connections)
        limited = run(url, project_dir, args.delay, args.workers, args.emails)
        times = limited["times"]
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        achieved = (len(times) - 1) / span if span else float("nan")
        print(
            f"limited: {args.emails} emails, sending.rate.per_second {args.rate}, "
            f"{args.workers} worker processes, relay round trip {args.delay * 1000:.0f} ms, "
            f"sending.connections {args.connections}"
        )
        print(
            f"  achieved {achieved:.1f} emails/s = {achieved / args.rate:.1%} of the limit "
            f"(target ≥ 90 %)"
        )
        print(
            f"  busiest 1-second window at the relay: {busiest_second(times)} (limit {args.rate})"
        )
        print(
            f"  lost {limited['lost']}, duplicated {limited['duplicated']}; "
            f"sends {limited['statuses']}"
        )

        with psycopg.connect(url) as connection:
            connection.execute(
                "DELETE FROM enrollments WHERE id > (SELECT min(id) + %s FROM enrollments)",
                (args.unlimited_emails - 1,),
            )
        reset(url)
        set_rate(project_dir, None, args.connections)
        unlimited = run(url, project_dir, args.delay, 1, args.unlimited_emails)
        times = unlimited["times"]
        span = times[-1] - times[0] if len(times) > 1 else float("nan")
        print(
            f"unlimited: {args.unlimited_emails} emails, 1 worker process (4 threads), "
            f"relay round trip {args.delay * 1000:.0f} ms"
        )
        print(
            f"  {(len(times) - 1) / span:.1f} emails/s per worker process (target ≥ 300/s); "
            f"lost {unlimited['lost']}, duplicated {unlimited['duplicated']}"
        )


if __name__ == "__main__":
    main()
