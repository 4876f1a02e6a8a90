"""Contacts import: every row accounted for, good rows in, bad rows named by line."""

from __future__ import annotations

import json
from collections.abc import Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from nurture.addresses import is_valid_email
from nurture.contacts.parsing import _COERCE, COMPUTED_COLUMNS
from nurture.definitions.fields import PROPERTY_TYPES, STANDARD_FIELDS
from nurture.definitions.loader import load_project
from nurture.engine.service import Engine
from nurture.errors import Problem
from nurture.lifecycle.importer import ContactFileError, ImportReport, import_contacts
from nurture.store import contacts as queries
from nurture.store.models import Contact, StageHistory

STAGES = ("subscriber", "lead", "mql", "sql", "opportunity", "customer")
PROPERTIES = {
    "budget_confirmed": "boolean",
    "employees": "number",
    "renewal": "date",
    "interests": "list",
    "industry": "string",
}


def project_engine(root: Path, sessions: sessionmaker[Session]) -> Engine:
    """An engine on a project with this module's ladder and properties, no workflow:
    what an import's stage moves go through (`on_batch`)."""
    (root / "workflows").mkdir(parents=True)
    lines = [f"stages: [{', '.join(STAGES)}]", "prospect_stage: sql", "properties:"]
    lines += [f"  {name}: {kind}" for name, kind in PROPERTIES.items()]
    (root / "nurture.yaml").write_text("\n".join(lines) + "\n")
    return Engine(load_project(root), sessions)


@pytest.fixture
def run(tmp_path: Path, sessions: sessionmaker[Session]) -> Any:
    engine = project_engine(tmp_path / "project", sessions)

    def run(name: str, content: str | bytes, **options: Any) -> ImportReport:
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        options.setdefault("stages", STAGES)
        options.setdefault("properties", PROPERTIES)
        options.setdefault("on_batch", engine.on_import)
        report = import_contacts(sessions, path, **options)
        assert report.created + report.updated + report.unchanged + len(report.rejected) == (
            report.total
        )
        return report

    return run


def contacts(session: Session) -> dict[str, Contact]:
    session.expire_all()
    return {c.email: c for c in session.scalars(select(Contact))}


def shown(problems: list[Problem]) -> list[str]:
    """As printed, with the file's name only (the tests' files live in tmp_path)."""
    return [f"{Path(p.file).name}:{p.line}: {p.message}" for p in problems]


def messages(report: ImportReport) -> list[str]:
    return shown(report.rejected)


def test_mixed_file_keeps_good_rows_and_names_each_bad_one(run: Any, session: Session) -> None:
    report = run(
        "contacts.csv",
        "email,first_name,stage,timezone,budget_confirmed\n"
        "anne@example.com,Anne,lead,Europe/Paris,oui\n"
        "bob@,Bob,lead,,\n"
        "claire@example.com,Claire,vip,,\n"
        "\n"
        "dan@example.com,Dan,,Mars/Olympus,\n"
        "eve@example.com,Eve,,,peut-être\n"
        ",Nobody,,,\n"
        "fred@example.com,Fred,MQL,america/new_york,0\n",
    )

    assert messages(report) == [
        "contacts.csv:3: invalid email 'bob@' (there must be something after the @-sign)",
        "contacts.csv:4: unknown stage 'vip' (expected one of: subscriber, lead, mql, sql, "
        "opportunity, customer)",
        "contacts.csv:6: unknown timezone 'Mars/Olympus'",
        "contacts.csv:7: invalid budget_confirmed 'peut-être' "
        "(expected a boolean: true/false, yes/no, oui/non, 1/0)",
        "contacts.csv:8: missing email",
    ]
    assert [p.line for p in report.rejected] == [3, 4, 6, 7, 8]
    assert (report.total, report.created, report.updated) == (7, 2, 0)
    stored = contacts(session)
    assert set(stored) == {"anne@example.com", "fred@example.com"}
    anne, fred = stored["anne@example.com"], stored["fred@example.com"]
    assert (anne.first_name, anne.stage, anne.timezone) == ("Anne", "lead", "Europe/Paris")
    assert anne.properties == {"budget_confirmed": True}
    assert (fred.stage, fred.timezone) == ("mql", "America/New_York")
    assert fred.properties == {"budget_confirmed": False}
    assert anne.source == "import:contacts.csv:2"
    assert fred.source == "import:contacts.csv:9"


def test_every_problem_of_a_row_is_reported_at_once(run: Any, session: Session) -> None:
    report = run("c.csv", "email,stage,employees\nbob@,vip,many\n")

    assert messages(report) == [
        "c.csv:2: invalid email 'bob@' (there must be something after the @-sign); unknown stage 'vip' (expected one of: subscriber, "
        "lead, mql, sql, opportunity, customer); invalid employees 'many' (expected a number)"
    ]


def test_json_lines(run: Any, session: Session) -> None:
    lines = [
        {"email": "anne@example.com", "first_name": "Anne", "stage": "lead",
         "properties": {"employees": "1 200", "budget_confirmed": True, "fav": [1, 2]},
         "consent": {"status": "granted", "at": "2026-01-05", "source": "webinar form"},
         "tags": ["webinar", "webinar", "fr"]},
        "{not json",
        ["a", "list"],
        {"email": "bob@example.com", "employees": 40, "score": 99},
        {"first_name": "Nobody"},
    ]  # fmt: skip
    text = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines)

    report = run("events.ndjson", text + "\n\n")

    assert messages(report) == [
        "events.ndjson:2: malformed JSON: Expecting property name enclosed in double quotes "
        "(column 2)",
        "events.ndjson:3: expected a JSON object, got list",
        "events.ndjson:5: missing email",
    ]
    assert shown(report.warnings) == [
        "events.ndjson:4: column 'score' is computed by nurture; ignored"
    ]
    stored = contacts(session)
    anne = stored["anne@example.com"]
    assert anne.properties == {"employees": 1200, "budget_confirmed": True, "fav": [1, 2]}
    assert anne.tags == ["webinar", "fr"]
    assert (anne.consent_status, anne.consent_source) == ("granted", "webinar form")
    assert anne.consent_at == datetime(2026, 1, 5, tzinfo=UTC)
    assert anne.consent_proof == {"source": "import:events.ndjson:1"}
    bob = stored["bob@example.com"]
    assert (bob.properties, bob.score) == ({"employees": 40}, 0.0)


def test_format_is_sniffed_without_a_known_extension(run: Any, session: Session) -> None:
    run("export.txt", '{"email": "anne@example.com"}\n')
    run("export.dat", "email\nbob@example.com\n")

    assert set(contacts(session)) == {"anne@example.com", "bob@example.com"}


def test_upsert_updates_without_clobbering_absent_fields(run: Any, session: Session) -> None:
    run(
        "first.csv",
        "email,first_name,last_name,company,owner,industry,employees,tags\n"
        "anne@example.com,Anne,Martin,Exemple SA,alice@example.com,banque,12,a;b\n",
    )
    anne_id = contacts(session)["anne@example.com"].id

    report = run(
        "second.csv",
        "email,first_name,company,employees,job_title,tags\n"
        "anne@example.com,,Exemple Industrie,40,CTO,b;c\n",
    )

    assert (report.created, report.updated) == (0, 1)
    anne = contacts(session)["anne@example.com"]
    assert anne.id == anne_id
    assert (anne.first_name, anne.last_name) == ("Anne", "Martin")  # empty cell, absent column
    assert (anne.company, anne.owner) == ("Exemple Industrie", "alice@example.com")
    assert anne.properties == {"industry": "banque", "employees": 40, "job_title": "CTO"}
    assert anne.tags == ["a", "b", "c"]
    assert anne.source == "import:first.csv:2"  # where the contact came from stays


def test_reimporting_the_same_file_changes_nothing(run: Any, session: Session) -> None:
    content = "email,first_name,stage,consent\nanne@example.com,Anne,lead,granted\n"
    run("c.csv", content)
    before = contacts(session)["anne@example.com"].updated_at

    report = run("c.csv", content)

    assert (report.created, report.updated, report.unchanged) == (0, 0, 1)
    assert contacts(session)["anne@example.com"].updated_at == before
    assert len(session.scalars(select(StageHistory)).all()) == 1


def test_emails_are_normalised(run: Any, session: Session) -> None:
    report = run(
        "c.csv",
        'email,first_name\n"  Anne@Example.COM ",Anne\nanne@example.com,Anne-Marie\n',
    )

    assert (report.created, report.updated, report.rejected) == (1, 1, [])
    stored = contacts(session)
    assert list(stored) == ["anne@example.com"]
    assert stored["anne@example.com"].first_name == "Anne-Marie"


def test_declared_properties_are_coerced(run: Any, session: Session) -> None:
    report = run(
        "c.csv",
        "email,budget_confirmed,employees,renewal,interests,industry,notes\n"
        'a@example.com,Oui,"12,5",2026-03-01,crm;emailing,42,007\n'
        "b@example.com,false,1200,2026-03-01T10:00:00Z,solo,x,\n"
        "c@example.com,NON,-3,,,,\n"
        "d@example.com,1,nan,,,,\n"
        "e@example.com,,,01/03/2026,,,\n",
    )

    assert messages(report) == [
        "c.csv:5: invalid employees 'nan' (expected a number)",
        "c.csv:6: invalid renewal '01/03/2026' (expected a date YYYY-MM-DD)",
    ]
    stored = contacts(session)
    assert stored["a@example.com"].properties == {
        "budget_confirmed": True,
        "employees": 12.5,
        "renewal": "2026-03-01",
        "interests": ["crm", "emailing"],
        "industry": "42",
        "notes": "007",  # undeclared: kept as written
    }
    assert stored["b@example.com"].properties == {
        "budget_confirmed": False,
        "employees": 1200,
        "renewal": "2026-03-01",
        "interests": ["solo"],
        "industry": "x",
    }
    assert stored["c@example.com"].properties == {"budget_confirmed": False, "employees": -3}


def test_a_bad_row_inside_a_batch_loses_none_of_its_neighbours(run: Any, session: Session) -> None:
    rows = [f"c{n}@example.com,lead" for n in range(10)]
    rows[4] = "c4@example.com,vip"  # a valid email in a bad row: not created at all
    rows[5] = "broken@,lead"
    progress: list[tuple[int, int]] = []

    report = run(
        "c.csv",
        "email,stage\n" + "\n".join(rows) + "\n",
        batch_size=3,
        on_progress=lambda done, total: progress.append((done, total)),
    )

    assert [p.line for p in report.rejected] == [6, 7]
    assert report.created == 8
    assert set(contacts(session)) == {f"c{n}@example.com" for n in (0, 1, 2, 3, 6, 7, 8, 9)}
    assert progress[-1] == (10, 10)
    assert [done for done, _ in progress] == sorted(done for done, _ in progress)


def test_duplicates_apply_in_file_order_across_batches(run: Any, session: Session) -> None:
    report = run(
        "c.csv",
        "email,first_name,stage,industry\n"
        "anne@example.com,Anne,lead,banque\n"
        "bob@example.com,Bob,,\n"
        "ANNE@example.com,,mql,\n"
        "anne@example.com,Annie,,\n",
        batch_size=2,
    )

    assert (report.created, report.updated, report.rejected) == (2, 2, [])
    anne = contacts(session)["anne@example.com"]
    assert (anne.first_name, anne.stage, anne.properties) == (
        "Annie",
        "mql",
        {"industry": "banque"},
    )
    history = session.scalars(select(StageHistory).order_by(StageHistory.id)).all()
    bob = contacts(session)["bob@example.com"]
    # Bob has no stage in the file: a new contact starts on the first stage.
    assert [(h.from_stage, h.to_stage, h.cause) for h in history] == [
        (None, "lead", "import"),
        (None, "subscriber", "import"),
        ("lead", "mql", "import"),
    ]
    assert history[2].details == {"source": "import:c.csv:4", "score": 0.0}
    assert report.stage_changes == [
        (anne.id, None, "lead"),
        (bob.id, None, "subscriber"),
        (anne.id, "lead", "mql"),
    ]


def test_a_withdrawn_consent_is_not_resurrected(run: Any, session: Session) -> None:
    run("optout.csv", "email,consent\nanne@example.com,unsubscribed\n")

    report = run(
        "old-crm.csv",
        "email,consent,consent_at,company\nanne@example.com,yes,2020-01-01,Exemple SA\n",
    )

    assert report.updated == 1
    assert shown(report.warnings) == [
        "old-crm.csv:2: consent stays withdrawn (the file says 'granted'); "
        "only the contact can give it again"
    ]
    anne = contacts(session)["anne@example.com"]
    assert (anne.consent_status, anne.consent_at, anne.company) == (
        "withdrawn",
        None,
        "Exemple SA",
    )


def test_excel_style_csv(run: Any, session: Session) -> None:
    """French Excel: BOM, semicolons, headers with capitals and spaces, CRLF."""
    content = "\ufeffEmail;First Name;Société;Consent\r\nanne@example.com;Anne;ACME;Oui\r\n"
    report = run("export.csv", content.encode("utf-8"))

    assert report.rejected == []
    anne = contacts(session)["anne@example.com"]
    assert (anne.first_name, anne.consent_status) == ("Anne", "granted")
    assert anne.properties == {"société": "ACME"}


def test_line_numbers_survive_quoted_newlines_and_blank_lines(run: Any) -> None:
    report = run(
        "c.csv",
        'email,notes\n\na@example.com,"two\nlines"\n\nbad@,x\nc@example.com,x,extra\n',
    )

    assert messages(report) == [
        "c.csv:6: invalid email 'bad@' (there must be something after the @-sign)",
        "c.csv:7: 3 fields, but the header has 2",
    ]


def test_a_row_short_of_a_field_is_refused_like_one_with_a_field_too_many(
    run: Any, session: Session
) -> None:
    """A value left out shifts the rest: 'Anne,lead' would make 'lead' her company."""
    report = run(
        "c.csv",
        "email,first_name,company,stage,\n"
        "anne@example.com,Anne,lead\n"
        "bob@example.com,Bob,Batipro,lead,\n"
        "carla@example.com,Carla,Exemple,lead\n"  # the unnamed last column may be left off
        "dan@example.com,Dan,Dupont,lead,x,y\n",
    )

    assert messages(report) == [
        "c.csv:2: 3 fields, but the header has 5: a value is missing "
        "(an empty one still needs its ',')",
        "c.csv:5: 6 fields, but the header has 5",
    ]
    assert set(contacts(session)) == {"bob@example.com", "carla@example.com"}


def test_a_contact_inserted_concurrently_is_updated_not_duplicated(
    run: Any, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process creates the contact between our SELECT and our INSERT."""
    real = queries.existing_contacts_by_email
    raced: list[bool] = []

    def racing(session: Session, emails: Collection[str]) -> dict[str, dict[str, Any]]:
        if not raced:
            raced.append(True)
            with sessions.begin() as other:
                other.add(Contact(email="anne@example.com", first_name="Anne"))
            return {}
        return real(session, emails)

    monkeypatch.setattr(queries, "existing_contacts_by_email", racing)

    report = run("c.csv", "email,company\nanne@example.com,ACME\nbob@example.com,Bob SA\n")

    assert (report.created, report.updated, report.rejected) == (1, 1, [])
    with sessions() as session:
        stored = contacts(session)
    assert set(stored) == {"anne@example.com", "bob@example.com"}
    assert (stored["anne@example.com"].first_name, stored["anne@example.com"].company) == (
        "Anne",
        "ACME",
    )


def test_a_session_can_be_given_instead_of_a_factory(tmp_path: Path, session: Session) -> None:
    path = tmp_path / "c.csv"
    path.write_text("email\nanne@example.com\n", encoding="utf-8")

    engine = project_engine(tmp_path / "project", sessionmaker(bind=session.get_bind()))
    report = import_contacts(
        session, path, stages=STAGES, source="crm-sync", on_batch=engine.on_import
    )

    assert report.created == 1
    assert contacts(session)["anne@example.com"].source == "crm-sync:2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "first_name,company\nAnne,ACME\n",
            "c.csv:1: no 'email' column (columns: first_name, company)",
        ),
        ("email,Email\na@example.com,b@example.com\n", "c.csv:1: duplicate column 'email'"),
        (
            b"email\na@example.com\n" + "café@exemple.fr\n".encode("latin-1"),
            'c.csv:3: not UTF-8 text; save the file as UTF-8 (Excel: "CSV UTF-8")',
        ),
    ],
)
def test_unusable_files_are_refused_before_any_write(
    run: Any, session: Session, content: str | bytes, message: str
) -> None:
    with pytest.raises(ContactFileError) as caught:
        run("c.csv", content)

    assert shown([caught.value.problem]) == [message]
    assert contacts(session) == {}


@pytest.mark.parametrize(
    "email",
    ["anne@example.com", "a.b+tag@sub.example.co.uk", "o'neil@example.fr", "élodie@exemple.fr",
     "x@xn--bcher-kva.example", "a_b-c@ex-ample.com"],
)  # fmt: skip
def test_valid_emails(email: str) -> None:
    assert is_valid_email(email)


@pytest.mark.parametrize(
    "email",
    ["bob@", "@example.com", "anne", "anne@example", "anne@@example.com", "an ne@example.com",
     "anne.@example.com", ".anne@example.com", "a..b@example.com", "anne@-example.com",
     "anne@example.com.", "anne@exa_mple.com", "anne@example.c0m1", "anne@123.456",
     "a" * 65 + "@example.com", "anne@" + "a" * 250 + ".com", '"anne"@example.com'],
)  # fmt: skip
def test_invalid_emails(email: str) -> None:
    assert not is_valid_email(email)


def test_every_declared_type_can_be_coerced() -> None:
    assert set(_COERCE) == set(PROPERTY_TYPES)
    assert set(STANDARD_FIELDS) >= COMPUTED_COLUMNS


def test_an_unknown_column_is_a_warning_once_and_strict_refuses_its_rows(
    run: Any, session: Session
) -> None:
    content = "email,stge,indstry\nanne@example.com,lead,btp\nbob@example.com,mql,banque\n"
    report = run("typo.csv", content)
    assert report.created == 2 and contacts(session)["anne@example.com"].stage == "subscriber"
    assert shown(report.warnings) == [
        "typo.csv:2: column 'stge' is neither a standard field nor a declared property "
        "(did you mean 'stage'?); kept as an undeclared property (--strict refuses it)",
        "typo.csv:2: column 'indstry' is neither a standard field nor a declared property "
        "(did you mean 'industry'?); kept as an undeclared property (--strict refuses it)",
    ]
    strict = run("typo2.csv", content.replace("anne", "carl").replace("bob", "dan"), strict=True)
    assert (strict.created, len(strict.rejected)) == (0, 2)
    assert "unknown column 'stge' (did you mean 'stage'?)" in strict.rejected[0].message


def test_a_row_the_database_refuses_is_rejected_alone_without_its_data(
    run: Any, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nurture.errors import ValueRefused

    original = queries.insert_contacts

    def picky(session_: Session, rows: Any) -> None:
        if any(r["email"] == "bad@example.com" for r in rows):
            raise ValueRefused("the database refused a value: value too long for type")
        original(session_, rows)

    monkeypatch.setattr(queries, "insert_contacts", picky)
    report = run(
        "c.csv", "email\nanne@example.com\nbad@example.com\nbob@example.com\n", batch_size=10
    )
    assert (report.created, shown(report.rejected)) == (
        2,
        ["c.csv:3: the database refused a value: value too long for type"],
    )
    assert set(contacts(session)) == {"anne@example.com", "bob@example.com"}
