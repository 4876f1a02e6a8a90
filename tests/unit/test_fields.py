"""Fields people see are bounded and clean: owners are addresses, names have a length."""

from __future__ import annotations

import pytest

from nurture.contacts.parsing import ContactParser, InvalidContact
from nurture.definitions.config import parse_config

PARSER = ContactParser(("subscriber", "lead"))


def test_an_owner_must_be_an_address_and_is_kept_in_its_one_form() -> None:
    with pytest.raises(InvalidContact, match="invalid owner"):
        PARSER.parse({"email": "a@example.com", "owner": "<script>x</script>@example.com"})
    contact = PARSER.parse({"email": "a@example.com", "owner": " Alice@Example.COM"})
    assert contact.fields["owner"] == "alice@example.com"


@pytest.mark.parametrize(
    ("column", "limit"), [("first_name", 100), ("last_name", 100), ("company", 200)]
)
def test_names_and_companies_have_a_limit(column: str, limit: int) -> None:
    assert PARSER.parse({"email": "a@example.com", column: "x" * limit}).fields[column]
    with pytest.raises(InvalidContact, match=f"{column} longer than {limit} characters"):
        PARSER.parse({"email": "a@example.com", column: "x" * (limit + 1)})


def test_handoff_owners_in_nurture_yaml_must_be_addresses() -> None:
    _config, problems = parse_config(
        "stages: [lead, sql]\nprospect_stage: sql\n"
        "handoff:\n  at: sql\n  assign:\n    round_robin: [Alice@Example.com, '<b>@x']\n"
        "    rules:\n      - {when: 'true', owner: not-an-address}\n",
        "nurture.yaml",
    )
    messages = [p.message for p in problems]
    assert any("round_robin[1]: expected an email address" in m for m in messages)
    assert any("rules[0].owner: expected an email address" in m for m in messages)


def test_a_typo_in_a_column_is_named_with_what_it_may_have_meant() -> None:
    parser = ContactParser(("subscriber", "lead"), {"industry": "string"})
    contact = parser.parse({"email": "a@example.com", "stge": "lead", "indstry": "btp"})
    assert contact.unknown == (("stge", "stage"), ("indstry", "industry"))
    assert contact.properties == {"stge": "lead", "indstry": "btp"}  # kept, as before
    with pytest.raises(InvalidContact) as refused:
        parser.parse({"email": "a@example.com", "stge": "lead"}, strict=True)
    assert "unknown column 'stge' (did you mean 'stage'?)" in str(refused.value)
