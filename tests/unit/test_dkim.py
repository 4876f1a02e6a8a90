"""DKIM signing in the transport pipeline, verified with dkimpy against the public key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from nurture.errors import ConfigurationError
from nurture.settings import Settings
from nurture.transports import (
    CaptureTransport,
    OutboxTransport,
    PermanentDeliveryError,
    build_message,
    transport_from_settings,
)
from nurture.transports.dkim import DkimSigner, load_key
from nurture.transports.message import OutgoingEmail
from nurture.transports.mime import BuiltMessage
from tests.dkim_support import DOMAIN, SELECTOR, dkim_key

UNSUBSCRIBE = (
    "<https://nurture.example.com/u/eyJzIjoxfQ.abc>, "
    "<mailto:unsubscribe@example.com?subject=unsubscribe-eyJzIjoxfQ.abc>"
)


def email() -> OutgoingEmail:
    return OutgoingEmail(
        send_id="42",
        from_address="Équipe Exemple <bonjour@example.com>",
        to="Jeanne <jeanne@exemple.fr>",
        subject="Votre guide, Éloïse",
        html="<p>Bonjour Éloïse</p>\n" + "<p>ligne</p>\n" * 50,
        text="Bonjour Éloïse\n" + "ligne\n" * 50,
        reply_to="ventes@example.com",
        headers={
            "List-Unsubscribe": UNSUBSCRIBE,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )


def signer() -> DkimSigner:
    return DkimSigner(SELECTOR, DOMAIN, dkim_key().private_pem.encode())


def _signature(data: bytes) -> dict[str, str]:
    header = data.split(b"\r\n\r\n", 1)[0].decode()
    assert header.startswith("DKIM-Signature:")
    value = header.split("\r\n", 1)[0] + "".join(
        line for line in header.split("\r\n")[1:] if line[:1] in (" ", "\t")
    )
    value = re.sub(r"\s+", "", value.removeprefix("DKIM-Signature:"))
    return dict(item.split("=", 1) for item in value.split(";") if item)


def test_the_signature_covers_from_subject_the_unsubscribe_headers_and_the_body() -> None:
    signed = signer().sign(build_message(email()))
    assert dkim_key().verify(signed.data)
    tags = _signature(signed.data)
    assert (tags["d"], tags["s"], tags["c"], tags["a"]) == (
        DOMAIN,
        SELECTOR,
        "relaxed/relaxed",
        "rsa-sha256",
    )
    signed_headers = tags["h"].split(":")
    for name in ("from", "subject", "list-unsubscribe", "list-unsubscribe-post", "to"):
        assert name in signed_headers
    assert "bh" in tags and "l" not in tags  # the whole body, no length limit


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"unsubscribe-eyJzIjoxfQ.abc", b"unsubscribe-eyJzIjoxfQ.xyz"),
        (b"List-Unsubscribe=One-Click", b"List-Unsubscribe=One-Clock"),
        (b"Bonjour =C3=89lo=C3=AFse</p>", b"Bonjour Eloise</p>"),
    ],
)
def test_an_altered_header_or_body_breaks_the_signature(old: bytes, new: bytes) -> None:
    signed = signer().sign(build_message(email()))
    assert old in signed.data
    assert not dkim_key().verify(signed.data.replace(old, new, 1))


def test_relaxed_canonicalisation_survives_a_relay_refolding_headers() -> None:
    signed = signer().sign(build_message(email())).data
    head, body = signed.split(b"\r\n\r\n", 1)
    refolded = head.replace(b"Subject:", b"subject:  ").replace(b"\r\n ", b"\r\n\t")
    assert dkim_key().verify(refolded + b"\r\n\r\n" + body.replace(b"</p>\r\n", b"</p>  \r\n"))


def test_every_transport_signs_when_given_a_signer(tmp_path: Path) -> None:
    capture = CaptureTransport()
    capture.signer = signer()
    capture.send(email())
    assert dkim_key().verify(capture.messages[0].data)
    outbox = OutboxTransport(tmp_path, fsync=False)
    outbox.signer = signer()
    outbox.send(email())
    [eml] = tmp_path.glob("*.eml")
    assert dkim_key().verify(eml.read_bytes())


def test_a_signing_failure_is_a_permanent_delivery_error() -> None:
    class Broken:
        def sign(self, message: BuiltMessage) -> BuiltMessage:
            raise ValueError("no key")

    capture = CaptureTransport()
    capture.signer = Broken()
    with pytest.raises(PermanentDeliveryError, match="could not sign"):
        capture.send(email())
    assert capture.messages == []


def _settings(**values: str) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_settings_take_pem_text_escaped_pem_or_a_path(tmp_path: Path) -> None:
    pem = dkim_key().private_pem
    path = tmp_path / "dkim.pem"
    path.write_text(pem)
    for key in (pem, pem.replace("\n", "\\n"), str(path)):
        transport = transport_from_settings(
            _settings(
                outbox_dir=str(tmp_path / "out"),
                dkim_selector=SELECTOR,
                dkim_domain=DOMAIN,
                dkim_private_key=key,
            )
        )
        assert isinstance(transport.signer, DkimSigner)
    assert transport_from_settings(_settings(outbox_dir=str(tmp_path))).signer is None
    assert load_key(str(path)) == path.read_bytes()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"dkim_selector": SELECTOR}, "NURTURE_DKIM_DOMAIN, NURTURE_DKIM_PRIVATE_KEY: required"),
        (
            {"dkim_selector": SELECTOR, "dkim_domain": DOMAIN, "dkim_private_key": "/nope.pem"},
            "NURTURE_DKIM_PRIVATE_KEY: neither PEM text nor a readable file",
        ),
        (
            {
                "dkim_selector": SELECTOR,
                "dkim_domain": DOMAIN,
                "dkim_private_key": "-----BEGIN PRIVATE KEY-----\\nAAAA\\n-----END PRIVATE KEY-----",
            },
            "NURTURE_DKIM_PRIVATE_KEY: cannot sign with this key",
        ),
        (
            {"dkim_selector": "bad selector", "dkim_domain": DOMAIN, "dkim_private_key": "x"},
            "NURTURE_DKIM_SELECTOR: not a DKIM selector",
        ),
        (
            {"dkim_selector": SELECTOR, "dkim_domain": "localhost", "dkim_private_key": "x"},
            "NURTURE_DKIM_DOMAIN: not a domain name",
        ),
    ],
)
def test_a_broken_dkim_configuration_stops_at_start(
    values: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)) as raised:
        transport_from_settings(_settings(outbox_dir=str(tmp_path), **values))
    assert "BEGIN" not in str(raised.value)  # the key is never echoed
