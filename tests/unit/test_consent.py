"""The consent rules, pauses in the send gate, the sending keys of nurture.yaml, the hash."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, time, timedelta

import jsonschema
import pytest

from nurture.contacts.parsing import normalise_basis
from nurture.definitions import model as m
from nurture.definitions.config import parse_config
from nurture.definitions.schema import SCHEMAS
from nurture.delivery.consent import consent_block, mailto_token
from nurture.delivery.links import list_unsubscribe
from nurture.delivery.policy import may_send
from nurture.delivery.suppression import email_hash

MONDAY_10_PARIS = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("status", "basis", "require", "expected"),
    [
        ("granted", None, True, None),
        ("legitimate_interest", None, True, None),
        ("unknown", None, False, None),  # B2B legitimate interest by default
        ("unknown", None, True, "no-consent"),
        ("unknown", "legitimate_interest", True, None),  # an explicit basis
        ("unknown", "consent", True, "no-consent"),  # a basis without the consent itself
        ("withdrawn", None, False, "unsubscribed"),
        ("withdrawn", "legitimate_interest", False, "unsubscribed"),
    ],
)
def test_which_consent_allows_marketing_email(
    status: str, basis: str | None, require: bool, expected: str | None
) -> None:
    assert consent_block(status, basis, require_consent=require) == expected


def test_bases_are_normalised_and_unknown_ones_kept() -> None:
    assert normalise_basis(" Intérêt légitime ") == "legitimate_interest"
    assert normalise_basis("LI") == "legitimate_interest"
    assert normalise_basis("Consentement") == "consent"
    assert normalise_basis("contrat") == "contrat"


def test_a_pause_defers_to_its_end_then_the_window_applies() -> None:
    sending = m.Sending(window=m.SendWindow(frozenset(range(5)), time(9), time(18)))
    ends_saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    deferral = may_send(sending, "Europe/Paris", [], MONDAY_10_PARIS, ends_saturday)
    assert deferral is not None and deferral.reason == "paused"
    assert deferral.until == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Monday 09:00 Paris
    assert may_send(m.Sending(), "UTC", [], MONDAY_10_PARIS, MONDAY_10_PARIS) is None
    over = may_send(m.Sending(), "UTC", [], MONDAY_10_PARIS, MONDAY_10_PARIS - timedelta(1))
    assert over is None


def test_the_list_unsubscribe_header() -> None:
    url, token = "https://n.example.com/u/tok.en", "tok.en"
    default = m.Sending(from_address="Équipe <bonjour@exemple.fr>")
    assert list_unsubscribe(url, token, default) == (
        f"<{url}>, <mailto:unsubscribe@exemple.fr?subject=unsubscribe-{token}>"
    )
    own = m.Sending(unsubscribe_mailto="stop@example.com")
    assert "<mailto:stop@example.com?subject=unsubscribe-tok.en>" in list_unsubscribe(
        url, token, own
    )
    assert list_unsubscribe(url, token, m.Sending(unsubscribe_mailto="")) == f"<{url}>"
    assert mailto_token("TR: Unsubscribe-tok.en") == "tok.en"


def test_the_sending_keys_of_nurture_yaml() -> None:
    text = (
        "stages: [a, b]\nprospect_stage: b\nsending:\n  require_consent: true\n"
        "  soft_bounce_limit: 5\n  unsubscribe_mailto: stop@example.com\n"
    )
    config, problems = parse_config(text, "nurture.yaml")
    assert problems == [] and config is not None
    sending = config.sending
    assert (sending.require_consent, sending.soft_bounce_limit) == (True, 5)
    assert sending.unsubscribe_mailto == "stop@example.com"
    config, _ = parse_config(
        "stages: [a]\nprospect_stage: a\nsending: {unsubscribe_mailto: false}\n", "n.yaml"
    )
    assert config is not None and config.sending.unsubscribe_mailto == ""
    defaults = m.Sending()
    assert (defaults.require_consent, defaults.soft_bounce_limit) == (False, 3)
    assert defaults.unsubscribe_mailto is None


def test_bad_sending_keys_are_located_problems() -> None:
    text = (
        "stages: [a]\nprospect_stage: a\nsending:\n  require_consent: yes\n"
        "  soft_bounce_limit: 0\n  unsubscribe_mailto: Stop <stop@example.com>\n"
    )
    _, problems = parse_config(text, "nurture.yaml")
    assert [str(p) for p in problems] == [
        "nurture.yaml:5: sending.soft_bounce_limit: expected a whole number ≥ 1, got 0",
        "nurture.yaml:4: sending.require_consent: expected true or false, got 'yes'",
        "nurture.yaml:6: sending.unsubscribe_mailto: expected a bare address "
        "(unsubscribe@example.com) or false, got 'Stop <stop@example.com>'",
    ]


def test_the_schema_knows_the_new_keys() -> None:
    schema = SCHEMAS["config"]()
    ok = {
        "stages": ["a"],
        "prospect_stage": "a",
        "sending": {"require_consent": True, "soft_bounce_limit": 2, "unsubscribe_mailto": False},
    }
    jsonschema.validate(ok, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ok, "sending": {"require_consent": "yes"}}, schema)


def test_the_hash_is_sha256_of_the_normalised_address() -> None:
    expected = hashlib.sha256(b"anne@example.com").hexdigest()
    assert email_hash("  Anne@Example.COM ") == expected
