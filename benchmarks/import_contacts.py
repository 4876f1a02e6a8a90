"""How fast `nurture contacts import` is: N synthetic contacts into a fresh SQLite file.

Usage: ``python benchmarks/import_contacts.py [N] [--batch-size B] [--reimport]``

Writes a CSV of N rows (default 100 000) with the standard columns, a couple
of declared properties and a handful of deliberately bad rows, migrates a
fresh SQLite database with `nurture.store.db.upgrade`, imports, and prints
rows/s. ``--reimport`` imports the same file a second time (the all-updates /
all-unchanged path). Numbers are for one machine; compare runs, not absolutes.
"""

from __future__ import annotations

import argparse
import csv
import random
import tempfile
import time
from pathlib import Path

from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.lifecycle.importer import DEFAULT_BATCH_SIZE, ImportReport, import_contacts
from nurture.store.db import create_engine_for, session_factory, upgrade

STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
PROPERTIES = {"budget_confirmed": "boolean", "employees": "number", "industry": "string"}
TIMEZONES = ("Europe/Paris", "Europe/Brussels", "America/Montreal", "")
INDUSTRIES = ("industrie", "logistique", "santé", "banque", "retail")


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["email", "first_name", "last_name", "company", "stage", "timezone", "consent",
             "budget_confirmed", "employees", "industry", "tags"]
        )  # fmt: skip
        for n in range(rows):
            email = f"contact{n}@example{n % 97}.com" if n % 1000 != 999 else f"broken{n}@"
            writer.writerow(
                [
                    email,
                    f"Prénom{n}",
                    f"Nom{n}",
                    f"Société {n % 5000}",
                    rng.choice(STAGES[:3]),
                    rng.choice(TIMEZONES),
                    rng.choice(("granted", "legitimate_interest", "")),
                    rng.choice(("oui", "non", "true", "")),
                    str(rng.randint(1, 5000)),
                    rng.choice(INDUSTRIES),
                    "webinar-2026;newsletter" if n % 3 == 0 else "",
                ]
            )


def write_project(root: Path) -> Path:
    """A project with the file's ladder and properties and no workflow."""
    (root / "workflows").mkdir(parents=True, exist_ok=True)
    lines = [f"stages: [{', '.join(STAGES)}]", "prospect_stage: sql", "properties:"]
    lines += [f"  {name}: {kind}" for name, kind in PROPERTIES.items()]
    (root / "nurture.yaml").write_text("\n".join(lines) + "\n")
    return root


def run(path: Path, url: str, batch_size: int) -> tuple[ImportReport, float]:
    engine = create_engine_for(url)
    try:
        sessions = session_factory(engine)
        # As `nurture contacts import` does: every stage a row sets goes through
        # the engine's stage-move path in the batch's transaction.
        nurture = Engine(load_project(write_project(path.parent / "project")), sessions)
        started = time.perf_counter()
        report = import_contacts(
            sessions,
            path,
            stages=STAGES,
            properties=PROPERTIES,
            batch_size=batch_size,
            on_batch=nurture.on_import,
        )
        return report, time.perf_counter() - started
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", nargs="?", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--reimport", action="store_true", help="import the file twice")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nurture-bench-") as tmp:
        csv_path = Path(tmp) / "contacts.csv"
        url = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        write_csv(csv_path, args.rows)
        upgrade(url)
        passes = ("first import", "re-import") if args.reimport else ("first import",)
        for name in passes:
            report, seconds = run(csv_path, url, args.batch_size)
            print(f"{name}: {report}")
            print(
                f"{name}: {report.total} rows in {seconds:.2f} s = "
                f"{report.total / seconds:,.0f} rows/s (batch size {args.batch_size})"
            )


if __name__ == "__main__":
    main()
