"""`nurture demo`: the example program end to end, on embedded defaults.

About 500 synthetic French B2B contacts go through the example project for 60
virtual days with realistic reactions: the real engine under `simulate`'s
virtual clock, writing every email to the outbox folder as a real `.eml`.
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

from nurture.definitions.loader import CONFIG_FILE

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
