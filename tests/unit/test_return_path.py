"""`sending.return_path` (VERP): the key of nurture.yaml and the envelope sender it gives."""

from __future__ import annotations

import jsonschema
import pytest

from nurture.definitions import model as m
from nurture.definitions.config import parse_config
from nurture.definitions.schema import SCHEMAS
from nurture.transports import build_message
from nurture.transports.message import OutgoingEmail

HEAD = "stages: [a]\nprospect_stage: a\n"


def test_return_path_is_read_and_names_each_send() -> None:
    config, problems = parse_config(
        HEAD + "sending:\n  return_path: bounces+{send_id}@example.com\n", "nurture.yaml"
    )
    assert problems == [] and config is not None
    assert config.sending.return_path == "bounces+{send_id}@example.com"
    assert config.sending.return_path_for("42") == "bounces+42@example.com"
    assert m.Sending().return_path is None
    assert m.Sending().return_path_for("42") is None


@pytest.mark.parametrize(
    "value",
    [
        "bounces@example.com",  # no {send_id}
        "bounces+{send_id}-{send_id}@example.com",  # twice
        "Bounces <bounces+{send_id}@example.com>",  # not bare
        "bounces@{send_id}.example.com",  # not in the local part
        "42",
    ],
)
def test_a_bad_return_path_is_a_located_problem(value: str) -> None:
    _, problems = parse_config(HEAD + f"sending:\n  return_path: '{value}'\n", "nurture.yaml")
    assert [str(p) for p in problems] == [
        "nurture.yaml:4: sending.return_path: expected a bare address with {send_id} once in "
        f"its local part (bounces+{{send_id}}@example.com), got {value!r}"
    ]


def test_the_schema_knows_return_path() -> None:
    schema = SCHEMAS["config"]()
    ok = {"stages": ["a"], "prospect_stage": "a"}
    jsonschema.validate({**ok, "sending": {"return_path": "b+{send_id}@example.com"}}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**ok, "sending": {"return_path": "b@example.com"}}, schema)


def test_the_envelope_sender_is_the_return_path_and_the_headers_stay() -> None:
    email = OutgoingEmail(
        send_id="42",
        from_address="Exemple <bonjour@example.com>",
        to="anne@example.org",
        subject="Bonjour",
        html="<p>Bonjour</p>",
        text="Bonjour",
        return_path="bounces+42@mail.example.com",
    )
    built = build_message(email)
    assert built.envelope_from == "bounces+42@mail.example.com"
    assert built.message_id.endswith("@example.com>")  # at the From domain, as before
    assert b"From: Exemple <bonjour@example.com>\r\n" in built.data
    assert b"bounces+42" not in built.data  # the receiving MTA writes Return-Path itself
    default = build_message(
        OutgoingEmail("42", "bonjour@example.com", "anne@example.org", "s", "<p>h</p>", "t")
    )
    assert default.envelope_from == "bonjour@example.com"
    with pytest.raises(ValueError, match="bare address"):
        build_message(
            OutgoingEmail(
                "42",
                "bonjour@example.com",
                "anne@example.org",
                "s",
                "h",
                "t",
                return_path="B <b+42@example.com>",
            )
        )
