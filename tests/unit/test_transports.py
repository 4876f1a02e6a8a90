"""Transports without a network: message bytes, outbox files, capture, retry delays, URLs.

The MIME tests read every built message back with the standard library's
strict parser (`policy.default`) and require each header and both bodies to
come back exactly: the fast builder is only worth having if it is correct.
"""

from __future__ import annotations

import os
import random
import re
import threading
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import nurture.clock as clock
from nurture.errors import ConfigurationError
from nurture.settings import load_settings
from nurture.transports import (
    MAX_ATTEMPTS,
    SEND_ID_HEADER,
    CaptureTransport,
    DeliveryError,
    OutboxTransport,
    PermanentDeliveryError,
    SMTPTransport,
    TransientDeliveryError,
    build_message,
    mask_address,
    retry_delay,
    transport_from_settings,
)
from nurture.transports.base import MAX_RETRY_DELAY
from nurture.transports.message import Delivery, OutgoingEmail
from nurture.transports.mime import header_line, parse_address, quoted_printable, visible
from nurture.transports.smtp import redact_url

FROM = "Équipe Exemple <bonjour@example.com>"
HTML = '<p>Bonjour Éloïse,</p>\n<p>Voici votre guide 📘 : <a href="https://example.com/g?a=1&b=2">ici</a>.</p>\n'
TEXT = "Bonjour Éloïse,\n\nVoici votre guide 📘 : https://example.com/g?a=1&b=2\n"


def email(**changes: object) -> OutgoingEmail:
    values: dict[str, object] = {
        "send_id": "send-42",
        "from_address": FROM,
        "to": "Jeanne Dupont <jeanne.dupont@exemple.fr>",
        "subject": "Bienvenue chez Exemple, Éloïse 🎉",
        "html": HTML,
        "text": TEXT,
        "reply_to": "Support Exemple <support@example.com>",
    }
    values.update(changes)
    return OutgoingEmail(**values)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(data)  # type: ignore[return-value]


def wire(text: str) -> str:
    """What a reader decodes for a body: line breaks become CRLF, any other CR stays."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


def bodies(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    return plain.get_content(), html.get_content()


def assert_wire_format(data: bytes) -> None:
    """CRLF only, 7-bit, body lines ≤ 76 (quoted-printable), every line ≤ 998."""
    assert data.isascii()
    assert b"\r" not in data.replace(b"\r\n", b"") and b"\n" not in data.replace(b"\r\n", b"")
    head, _, body = data.partition(b"\r\n\r\n")
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert data.endswith(b"--\r\n")


# -- the message bytes -----------------------------------------------------------


def test_message_round_trips_through_the_standard_parser() -> None:
    built = build_message(email(headers={"List-Unsubscribe": "<https://example.com/u/t0k3n>"}))
    assert_wire_format(built.data)
    message = parse(built.data)

    assert not message.defects
    assert message.get_content_type() == "multipart/alternative"
    assert message["From"].addresses[0].display_name == "Équipe Exemple"
    assert message["From"].addresses[0].addr_spec == "bonjour@example.com"
    assert message["To"].addresses[0].display_name == "Jeanne Dupont"
    assert message["To"].addresses[0].addr_spec == "jeanne.dupont@exemple.fr"
    assert message["Reply-To"].addresses[0].addr_spec == "support@example.com"
    assert str(message["Subject"]) == "Bienvenue chez Exemple, Éloïse 🎉"
    assert message["Message-ID"] == built.message_id
    assert message[SEND_ID_HEADER] == "send-42"
    assert message["MIME-Version"] == "1.0"
    assert message["List-Unsubscribe"] == "<https://example.com/u/t0k3n>"
    assert message["Date"].datetime.tzinfo is not None
    assert bodies(message) == (wire(TEXT), wire(HTML))
    for part in message.iter_parts():
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
    assert built.envelope_from == "bonjour@example.com"
    assert built.recipients == ("jeanne.dupont@exemple.fr",)


def test_message_id_is_unique_and_at_the_sender_domain() -> None:
    ids = {build_message(email()).message_id for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"<[0-9a-f]{32}@example\.com>", i) for i in ids)


def test_a_given_message_id_is_kept() -> None:
    assert build_message(email(message_id="abc.1@mail.example.com")).message_id == (
        "<abc.1@mail.example.com>"
    )
    with pytest.raises(ValueError, match="Message-ID"):
        build_message(email(message_id="no domain"))


def test_boundary_is_unique_and_cannot_occur_in_the_bodies() -> None:
    def boundary(data: bytes) -> str:
        found = re.search(rb'boundary="([^"]+)"', data)
        assert found
        return found.group(1).decode()

    first, second = build_message(email()).data, build_message(email()).data
    assert boundary(first) != boundary(second)
    # Quoted-printable never writes "=_": a body cannot contain the delimiter.
    assert boundary(first).startswith("=_")
    assert b"=_" not in quoted_printable("=_ a = b __ =_\n" * 40)


def test_date_comes_from_the_clock() -> None:
    moment = datetime(2026, 3, 1, 9, 30, 5, tzinfo=UTC)
    with clock.using(clock.VirtualClock(moment)):
        delivery = CaptureTransport().send(email())
    assert delivery.accepted_at == moment
    built = build_message(email(), now=moment)
    assert parse(built.data)["Date"].datetime == moment
    assert b"Date: Sun, 01 Mar 2026 09:30:05 +0000\r\n" in built.data


def test_ascii_headers_stay_readable_and_fold_at_spaces() -> None:
    subject = "Your guide to nurturing leads " * 6
    subject = subject.strip()
    line = header_line("Subject", subject)
    assert "=?" not in line
    assert all(len(part) <= 76 for part in line.split("\r\n"))
    assert parse(f"{line}\r\n\r\n".encode())["Subject"] == subject
    built = build_message(email(subject="Hello", from_address="Team <team@example.com>"))
    assert b"\r\nSubject: Hello\r\n" in built.data
    assert b"\r\nFrom: Team <team@example.com>\r\n" in built.data


@pytest.mark.parametrize(
    "value",
    [
        "Équipe Exemple",
        "Dupont, Jeanne",
        'Jeanne "JD" Dupont',
        "back\\slash",
        "=?utf-8?q?not_an_encoded_word?=",
        "日本語のチーム名はとても長くなることがありますね本当に長いです",
        "x" * 200,
        "😀" * 40,
    ],
)
def test_display_names_round_trip(value: str) -> None:
    quoted = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    built = build_message(email(from_address=f"{quoted} <a@example.com>", to=f"{quoted} <b@x.fr>"))
    message = parse(built.data)
    assert message["From"].addresses[0].display_name == value
    assert message["To"].addresses[0].display_name == value
    assert message["To"].addresses[0].addr_spec == "b@x.fr"


def test_display_name_whitespace_is_collapsed() -> None:
    # A line break in a contact's name is never meant; header parsers refuse it.
    assert parse_address("Jeanne\n  Dupont\t <j@x.fr>") == ("Jeanne Dupont", "j@x.fr")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("j@x.fr", ("", "j@x.fr")),
        ("<j@x.fr>", ("", "j@x.fr")),
        ("  Jeanne <j@x.fr>  ", ("Jeanne", "j@x.fr")),
        ('"Dupont, Jeanne" <j@x.fr>', ("Dupont, Jeanne", "j@x.fr")),
        ("Zoé <zoé@é.fr>".replace("zoé", "zoe"), ("Zoé", "zoe@xn--9ca.fr")),
    ],
)
def test_parse_address(value: str, expected: tuple[str, str]) -> None:
    assert parse_address(value) == expected


@pytest.mark.parametrize(
    "value",
    ["", "nobody", "a@x.fr, b@y.fr", "A <a@x.fr>, B <b@y.fr>", "zoé@x.fr", "a@-x.fr", "a@x..fr"],
)
def test_not_one_address_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        parse_address(value)


def test_an_unsendable_email_is_a_permanent_failure() -> None:
    capture = CaptureTransport()
    with pytest.raises(PermanentDeliveryError, match="invalid message") as caught:
        capture.send(email(to="not an address"))
    assert caught.value.send_id == "send-42"
    assert capture.messages == []


@pytest.mark.parametrize("name", ["From", "subject", "X-Nurture-Send-Id", "Content-Type", "Bcc"])
def test_headers_nurture_sets_cannot_be_given_again(name: str) -> None:
    with pytest.raises(ValueError, match="set by nurture"):
        build_message(email(headers={name: "x"}))


def test_extra_headers_are_added_and_encoded_when_needed() -> None:
    headers = {
        "List-Unsubscribe": "<https://example.com/u/abc>, <mailto:unsub@example.com?subject=abc>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        "X-Campagne": "Été 2026",
    }
    message = parse(build_message(email(headers=headers)).data)
    for name, value in headers.items():
        assert message[name] == value
    with pytest.raises(ValueError, match="header name"):
        build_message(email(headers={"Bad Name": "x"}))


def test_header_injection_is_impossible() -> None:
    evil = "Salut\r\nBcc: everyone@example.com"
    built = build_message(email(subject=evil))
    message = parse(built.data)
    assert message["Bcc"] is None
    # The line break is no header break; it shows as a space (controls never reach a header).
    assert str(message["Subject"]) == "Salut  Bcc: everyone@example.com"


def test_bidi_and_control_characters_never_reach_a_header() -> None:
    built = build_message(
        email(
            subject="Facture\u202egnp.exe\x07 pour vous",
            to="Anne\u202e\u2066 Martin <anne@example.com>",
        )
    )
    message = parse(built.data)
    assert str(message["Subject"]) == "Facturegnp.exe pour vous"
    assert message["To"].addresses[0].display_name == "Anne Martin"


def test_send_id_must_be_a_header_token() -> None:
    with pytest.raises(ValueError, match="send id"):
        build_message(email(send_id="has space"))


def test_bodies_survive_dots_from_lines_long_lines_and_carriage_returns() -> None:
    text = (
        ".\n..leading dots\nFrom the start\n" + "é" * 500 + "\nend with space \n\ttab\rlone CR\r\n"
    )
    built = build_message(email(text=text, html="From here\n.\n"))
    assert_wire_format(built.data)
    assert b"\r\n=46rom the start\r\n" in built.data  # no ">From" in an mbox
    assert b"\r\n=2E\r\n" in built.data  # a lone dot never ends DATA
    assert bodies(parse(built.data)) == (wire(text), wire("From here\n.\n"))


def test_empty_bodies_and_subject() -> None:
    message = parse(build_message(email(text="", html="", subject="")).data)
    assert bodies(message) == ("", "")
    assert message["Subject"] == ""


_unicode = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
_tricky = st.sampled_from(
    ["\n", "\r", "\r\n", ".", "From ", " ", "\t", "=", "é", "🎉", "x" * 90, "=_"]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    subject=st.text(_unicode, max_size=200),
    name=st.text(_unicode, max_size=60),
    text=st.text(_unicode) | st.lists(_tricky).map("".join),
    html=st.text(_unicode) | st.lists(_tricky).map("".join),
)
def test_round_trip_property(subject: str, name: str, text: str, html: str) -> None:
    quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    built = build_message(
        email(subject=subject, from_address=f"{quoted} <a@example.com>", text=text, html=html)
    )
    assert_wire_format(built.data)
    message = parse(built.data)
    assert str(message["Subject"]) == visible(subject)  # every visible character, exactly
    assert message["From"].addresses[0].display_name == " ".join(visible(name).split())
    assert bodies(message) == (wire(text), wire(html))


@settings(max_examples=200, deadline=None)
@given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300))
def test_ascii_subject_property(subject: str) -> None:
    line = header_line("Subject", subject)
    limit = 76 if max(map(len, subject.split(" "))) < 60 else 998
    assert all(len(part) <= limit for part in line.split("\r\n"))
    assert str(parse(f"{line}\r\n\r\n".encode())["Subject"]) == subject


# -- the pipeline and the capture transport -------------------------------------


def test_capture_keeps_what_was_sent() -> None:
    capture = CaptureTransport()
    delivery = capture.send(email())
    assert isinstance(delivery, Delivery)
    assert delivery.send_id == "send-42"
    [captured] = capture.messages
    assert captured.message_id == delivery.message_id
    assert captured.send_id == "send-42"
    assert captured.recipients == ("jeanne.dupont@exemple.fr",)
    assert captured.parsed()[SEND_ID_HEADER] == "send-42"
    assert capture.for_recipient("JEANNE.DUPONT@exemple.fr") == [captured]
    assert capture.for_recipient("Someone <other@exemple.fr>") == []
    capture.clear()
    assert capture.messages == []


def test_capture_fails_on_demand() -> None:
    capture = CaptureTransport()
    capture.fail_next(2)
    for _ in range(2):
        with pytest.raises(TransientDeliveryError) as caught:
            capture.send(email())
        assert caught.value.smtp_code == 451
        assert caught.value.transient
    capture.send(email())
    capture.fail_next(1, transient=False)
    with pytest.raises(PermanentDeliveryError) as refused:
        capture.send(email())
    assert refused.value.smtp_code == 550 and not refused.value.transient
    capture.fail_if(lambda e: e.to.endswith("@bounce.test>"), transient=False, code=552)
    with pytest.raises(PermanentDeliveryError, match="552"):
        capture.send(email(to="B <b@bounce.test>"))
    capture.send(email())
    assert len(capture.messages) == 2
    assert capture.attempts == 6


def test_send_many_returns_one_result_per_email() -> None:
    capture = CaptureTransport()
    capture.fail_if(lambda e: e.send_id == "s2", transient=False)
    batch = [email(send_id="s1"), email(send_id="s2"), email(send_id="s3", to="broken")]
    batch.append(email(send_id="s4"))
    results = capture.send_many(batch)
    assert [type(r) for r in results] == [
        Delivery,
        PermanentDeliveryError,
        PermanentDeliveryError,
        Delivery,
    ]
    assert [r.send_id for r in results] == ["s1", "s2", "s3", "s4"]
    assert [m.send_id for m in capture.messages] == ["s1", "s4"]


def test_capture_is_thread_safe() -> None:
    capture = CaptureTransport()

    def send(worker: int) -> None:
        for n in range(50):
            capture.send(email(send_id=f"w{worker}-{n}"))

    threads = [threading.Thread(target=send, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({m.send_id for m in capture.messages}) == 400


def test_transport_is_a_context_manager() -> None:
    with CaptureTransport() as capture:
        capture.send(email())
    assert len(capture.messages) == 1


def test_delivery_errors_do_not_show_the_full_address() -> None:
    error = PermanentDeliveryError(
        "the recipient was refused", recipient="jeanne.dupont@exemple.fr", smtp_code=550
    )
    assert "jeanne.dupont" not in str(error)
    assert "j***@exemple.fr" in str(error)
    assert error.recipient == "jeanne.dupont@exemple.fr"
    assert isinstance(error, DeliveryError) and not error.transient
    assert mask_address("Jeanne <jeanne@x.fr>") == "j***@x.fr"
    assert mask_address("nonsense") == "***"


# -- the outbox folder ------------------------------------------------------------


def test_outbox_writes_one_parseable_file_per_message(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "outbox"
    outbox = OutboxTransport(folder)
    moment = datetime(2026, 3, 1, 9, 30, 5, 123456, tzinfo=UTC)
    with clock.using(clock.VirtualClock(moment)):
        delivery = outbox.send(email(send_id="enr-7:step-2/../../etc"))
    [path] = folder.iterdir()
    assert path.name == "20260301T093005.123456Z-enr-7_step-2_.._.._etc.eml"
    message = parse(path.read_bytes())
    assert message["Message-ID"] == delivery.message_id
    assert message[SEND_ID_HEADER] == "enr-7:step-2/../../etc"
    assert bodies(message) == (wire(TEXT), wire(HTML))
    assert_wire_format(path.read_bytes())


def test_outbox_writes_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outbox = OutboxTransport(tmp_path)

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(TransientDeliveryError, match="No space left"):
        outbox.send(email())
    assert list(tmp_path.iterdir()) == []  # neither a half file nor a temporary one


def test_outbox_retry_is_a_new_file(tmp_path: Path) -> None:
    outbox = OutboxTransport(tmp_path, fsync=False)
    with clock.using(clock.VirtualClock(datetime(2026, 1, 1, tzinfo=UTC))) as virtual:
        outbox.send(email())
        assert isinstance(virtual, clock.VirtualClock)
        virtual.advance_to(datetime(2026, 1, 1, 0, 1, tzinfo=UTC))
        outbox.send(email())
    assert len(list(tmp_path.glob("*.eml"))) == 2


# -- retries ------------------------------------------------------------------------


def test_retry_delay_grows_exponentially_with_jitter_and_a_cap() -> None:
    rng = random.Random(1)
    for attempt in range(1, 40):
        nominal = min(timedelta(minutes=2 ** (attempt - 1)), timedelta(hours=1))
        for _ in range(20):
            delay = retry_delay(attempt, rng)
            assert nominal * 0.8 <= delay <= nominal
            assert delay <= MAX_RETRY_DELAY
    assert retry_delay(10**9) <= MAX_RETRY_DELAY
    assert {retry_delay(3, rng) for _ in range(10)} != {retry_delay(3, rng)}
    with pytest.raises(ValueError):
        retry_delay(0)
    assert 3 <= MAX_ATTEMPTS <= 20


# -- SMTP configuration ---------------------------------------------------------------


def test_smtp_url_is_parsed_and_the_password_never_shown() -> None:
    transport = SMTPTransport.from_url("smtp://me%40corp.fr:p%40ss%3Aw0rd@mail.example.com:587")
    assert (transport.host, transport.port) == ("mail.example.com", 587)
    assert transport.username == "me@corp.fr"
    assert transport._password == "p@ss:w0rd"
    assert transport.starttls == "auto" and not transport.implicit_tls
    assert "p@ss" not in repr(transport) and "w0rd" not in repr(transport)
    assert repr(transport) == "SMTPTransport(smtp://me@corp.fr:***@mail.example.com:587)"
    assert "w0rd" not in redact_url("smtp://u:w0rd@h:25") == "smtp://u:***@h:25"


def test_smtp_url_options_and_defaults() -> None:
    plain = SMTPTransport.from_url("smtp://relay.local")
    assert plain.port == 25 and plain.username is None
    implicit = SMTPTransport.from_url("smtps://relay.local?timeout=5")
    assert implicit.port == 465 and implicit.implicit_tls and implicit.timeout == 5.0
    off = SMTPTransport.from_url("smtp://relay.local:2525?starttls=off&helo=nurture.example")
    assert off.starttls == "off" and off.local_hostname == "nurture.example"
    unverified = SMTPTransport.from_url("smtps://relay.local?verify=false")
    assert unverified.ssl_context is not None
    assert not unverified.ssl_context.check_hostname


@pytest.mark.parametrize(
    "url",
    [
        "http://relay.local",
        "smtp://u:secret@relay.local:port",
        "smtp://relay.local?starttls=maybe",
        "smtp://relay.local?tls=yes",
        "smtps://relay.local?starttls=require",
        "smtp://relay.local?timeout=soon",
        "smtp://u@relay.local",
    ],
)
def test_bad_smtp_urls_are_configuration_errors(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SMTPTransport.from_url(url)
    assert "secret" not in str(caught.value)


def test_transport_from_settings(tmp_path: Path) -> None:
    outbox = transport_from_settings(load_settings(outbox_dir=tmp_path / "out", _env_file=None))
    assert isinstance(outbox, OutboxTransport) and outbox.directory == tmp_path / "out"
    smtp = transport_from_settings(
        load_settings(smtp_url="smtps://u:pw@mail.example.com", _env_file=None)
    )
    assert isinstance(smtp, SMTPTransport) and smtp.implicit_tls
