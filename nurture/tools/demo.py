"""`nurture demo`: the example program end to end, on embedded defaults.

About 500 synthetic French B2B contacts go through the example project for the
last 60 days with realistic reactions: the real engine under `simulate`'s
virtual clock, writing every email as a real `.eml`.

Everything lands in one folder of its own (`./nurture-demo` by default), never
mixed with a real project's outbox: a copy of the example project, the
contacts, the SQLite database the run leaves (so `explain`, `report`,
`handoffs` and `graph` can be tried on it from there) and the outbox. The
folder's `.gitignore` keeps git out of it and marks it as the demo's, which a
later run replaces whole; a folder without that mark is never touched.
"""

from __future__ import annotations

import csv
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

from nurture.definitions.loader import CONFIG_FILE, TEMPLATES_DIR, WORKFLOWS_DIR
from nurture.errors import NurtureError

DATABASE_FILE = "nurture.sqlite3"
OUTBOX = "outbox"
#: The first line of the demo folder's `.gitignore`: what says a folder is the demo's.
MARK = "# Written by `nurture demo`, replaced whole by its next run: nothing here is committed.\n"


@dataclass(frozen=True)
class DemoFolder:
    """Where a demo run writes: the project copy, its contacts, database and outbox."""

    root: Path

    @property
    def contacts(self) -> Path:
        return self.root / "contacts.csv"

    @property
    def database(self) -> Path:
        return self.root / DATABASE_FILE

    @property
    def outbox(self) -> Path:
        return self.root / OUTBOX

    def written(self) -> tuple[int, int]:
        """(emails written, of which to sales): a notification's send id is `n<id>`."""
        files = [path.name for path in self.outbox.glob("*.eml")]
        to_sales = sum(1 for name in files if name.rpartition("-")[2][:1] == "n")
        return len(files), to_sales


def prepare_folder(folder: Path, example: Path) -> DemoFolder:
    """An empty demo folder holding a copy of `example` (its config, workflows, templates
    and examples), replacing an earlier demo's; refused if it holds anything else."""
    if folder.exists():
        if not folder.is_dir():
            raise NurtureError(f"{folder} exists and is not a folder")
        mark = folder / ".gitignore"
        ours = mark.is_file() and mark.read_text(encoding="utf-8").startswith(MARK)
        if any(folder.iterdir()) and not ours:
            raise NurtureError(
                f"{folder} is not empty and was not written by nurture demo: "
                "remove it or give another --dir"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / ".gitignore").write_text(MARK + "*\n", encoding="utf-8")
    shutil.copy(example / CONFIG_FILE, folder / CONFIG_FILE)
    for name in (WORKFLOWS_DIR, TEMPLATES_DIR, "examples"):
        if (example / name).is_dir():
            shutil.copytree(example / name, folder / name)
    return DemoFolder(folder)


FIRST_NAMES = (
    "Anne",
    "Julien",
    "Camille",
    "Karim",
    "Sophie",
    "Thomas",
    "Léa",
    "Nicolas",
    "Inès",
    "Hugo",
    "Chloé",
    "Mathieu",
    "Sarah",
    "Antoine",
    "Manon",
    "Yanis",
    "Claire",
    "Lucas",
    "Emma",
    "Malik",
    "Pauline",
    "Romain",
    "Élodie",
    "Maxime",
    "Nadia",
    "Olivier",
    "Laurence",
    "Vincent",
    "Aurélie",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefebvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "Benali",
    "Mercier",
    "Dupuis",
    "Lambert",
    "Bonnet",
)
COMPANY_WORDS = (
    ("Atelier", "Groupe", "Cabinet", "Société", "Maison", "Ateliers", "Bureau"),
    (
        "Dubreuil",
        "Novaliance",
        "Batipro",
        "Hydrofluid",
        "Transalpes",
        "Medilab",
        "Proxitel",
        "Armor",
        "Lumière",
        "Vercors",
        "Azur",
        "Cévennes",
        "Boréal",
        "Garonne",
        "Émeraude",
    ),
)
INDUSTRIES = (
    "Industrie",
    "Conseil",
    "BTP",
    "Transport et logistique",
    "Santé",
    "Télécoms",
    "Distribution",
    "Services numériques",
    "Agroalimentaire",
)
TITLES = (
    "Directrice commerciale",
    "Directeur des ventes",
    "Responsable marketing",
    "Gérant",
    "Responsable développement commercial",
    "Chargée de communication",
    "Head of Sales",
    "Fondateur",
    "Assistante commerciale",
    "Stagiaire marketing",
)


def find_example_project() -> Path:
    """The example project: this checkout's root, or the copy shipped in the package."""
    package = Path(__file__).parents[1]  # nurture/
    for candidate in (package.parent, package / "_example"):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError("the example project is not installed with this copy of nurture")


def write_contacts(path: Path, count: int, seed: int) -> None:
    rng = random.Random(seed)
    stages = ("subscriber",) * 60 + ("lead",) * 35 + ("mql",) * 5
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "email",
                "first_name",
                "last_name",
                "company",
                "stage",
                "timezone",
                "consent",
                "country",
                "industry",
                "company_size",
                "job_title",
            ]
        )
        for number in range(count):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            company = f"{rng.choice(COMPANY_WORDS[0])} {rng.choice(COMPANY_WORDS[1])}"
            domain = company.lower().replace(" ", "-").replace("é", "e").replace("è", "e")
            email = f"{_ascii(first)}.{_ascii(last)}.{number}@{_ascii(domain)}.example.com"
            writer.writerow(
                [
                    email,
                    first,
                    last,
                    company,
                    rng.choice(stages),
                    rng.choice(("Europe/Paris",) * 8 + ("Europe/Brussels", "America/Montreal")),
                    rng.choice(("legitimate_interest", "granted")),
                    rng.choice(("FR",) * 8 + ("BE", "CH")),
                    rng.choice(INDUSTRIES),
                    rng.choice((5, 12, 25, 40, 60, 85, 140, 300, 800)),
                    rng.choice(TITLES),
                ]
            )


def _ascii(text: str) -> str:
    table = str.maketrans("éèêëàâîïôöùûüçÉ", "eeeeaaiioouuucE")
    return text.translate(table).lower()
