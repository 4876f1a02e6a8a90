"""SMTPTransport against a real SMTP server (aiosmtpd, see tests/smtp_server.py).

What the unit tests cannot show: the bytes survive a real SMTP dialogue
(dot-stuffing included), AUTH and both kinds of TLS work with certificate
checks on, one connection carries many messages, and every way a relay can
say no (or say nothing) comes back as the right kind of `DeliveryError`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nurture.errors import ConfigurationError
from nurture.settings import Settings
from nurture.transports import (
    SEND_ID_HEADER,
    PermanentDeliveryError,
    SMTPTransport,
    TransientDeliveryError,
    transport_from_settings,
)
from nurture.transports import smtp as smtp_module
from nurture.transports.message import Delivery, OutgoingEmail
from tests.smtp_server import (
    SMTPTestServer,
    ca_pem,
    client_ssl_context,
    free_port,
    silent_server,
)

MakeServer = Callable[..., SMTPTestServer]

TEXT = "Bonjour Éloïse,\n.\nFrom now on: your guide.\n" + "long " * 60 + "\n"
HTML = "<p>Bonjour Éloïse 🎉</p>\n.\n<p>From now on</p>\n"


def email(n: int = 1, to: str = "Jeanne Dupont <jeanne@exemple.fr>") -> OutgoingEmail:
    return OutgoingEmail(
        send_id=f"send-{n}",
        from_address="Équipe Exemple <bonjour@example.com>",
        to=to,
        subject=f"Bienvenue n°{n}, Éloïse",
        html=HTML,
        text=TEXT,
        reply_to="support@example.com",
        headers={"List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
    )


def wire(text: str) -> str:
    return text.replace("\n", "\r\n")


@pytest.fixture
def transport(smtp_server: SMTPTestServer) -> Iterator[SMTPTransport]:
    with SMTPTransport.from_url(smtp_server.url, timeout=5) as transport:
        yield transport


def test_a_message_arrives_whole(smtp_server: SMTPTestServer, transport: SMTPTransport) -> None:
    delivery = transport.send(email())

    [received] = smtp_server.messages
    assert received.envelope_from == "bonjour@example.com"
    assert received.recipients == ("jeanne@exemple.fr",)
    message = received.parsed()
    assert not message.defects
    assert message["Message-ID"] == delivery.message_id
    assert message[SEND_ID_HEADER] == "send-1"
    assert str(message["Subject"]) == "Bienvenue n°1, Éloïse"
    assert message["From"].addresses[0].display_name == "Équipe Exemple"
    assert message["To"].addresses[0].addr_spec == "jeanne@exemple.fr"
    assert message["Reply-To"] == "support@example.com"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == wire(TEXT)
    assert html.get_content() == wire(HTML)
    assert not received.tls


def test_auth(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(username="nurture@example.com", password="p@ss:wörd/1")
    with SMTPTransport.from_url(server.url, timeout=5) as transport:
        transport.send(email())
    assert server.messages[0].login == "nurture@example.com"


def test_wrong_password_is_a_configuration_error(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(username="nurture", password="right")
    url = server.url.replace(":right@", ":wrong@")
    with (
        SMTPTransport.from_url(url, timeout=5) as transport,
        pytest.raises(ConfigurationError, match="authentication failed") as caught,
    ):
        transport.send(email())
    assert "wrong" not in str(caught.value)
    assert server.messages == []


def test_missing_credentials_are_a_configuration_error(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(username="nurture", password="pw")
    url = f"smtp://{server.host}:{server.port}"
    with (
        SMTPTransport.from_url(url, timeout=5) as transport,
        pytest.raises(ConfigurationError, match="requires authentication"),
    ):
        transport.send(email())


def test_password_is_not_sent_in_clear_to_a_remote_server(
    make_smtp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = make_smtp_server(username="nurture", password="pw")
    monkeypatch.setattr(smtp_module, "_is_loopback", lambda host: False)
    with (
        SMTPTransport.from_url(server.url, timeout=5) as transport,
        pytest.raises(ConfigurationError, match="in clear"),
    ):
        transport.send(email())
    with SMTPTransport.from_url(server.url + "?starttls=off", timeout=5) as transport:
        transport.send(email())  # explicitly accepted
    assert len(server.messages) == 1


def test_starttls_with_auth(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(starttls=True, username="nurture", password="pw")
    with SMTPTransport.from_url(server.url, timeout=5, ssl_context=client_ssl_context()) as t:
        t.send(email())
    assert server.messages[0].tls
    assert server.messages[0].login == "nurture"


def test_an_untrusted_certificate_is_a_configuration_error_and_a_ca_file_fixes_it(
    make_smtp_server: MakeServer, tmp_path: Path
) -> None:
    """A relay whose certificate we cannot trust fails every email the same way: the
    worker must stop with what to do, not retry each email for hours."""
    server = make_smtp_server(starttls=True)
    with (
        SMTPTransport.from_url(server.url, timeout=5) as transport,
        pytest.raises(ConfigurationError, match="NURTURE_SMTP_CA_FILE") as caught,
    ):
        transport.send(email())
    assert "not trusted (unable to get local issuer certificate)" in str(caught.value)
    settings = Settings(_env_file=None, smtp_url=server.url, smtp_ca_file=ca_pem(tmp_path))
    with transport_from_settings(settings) as trusted:
        trusted.send(email())
    assert server.messages[-1].tls
    with pytest.raises(ValueError, match="no such file"):
        Settings(_env_file=None, smtp_ca_file=tmp_path / "missing.pem")
    with SMTPTransport.from_url(server.url + "?verify=false", timeout=5) as transport:
        transport.send(email())  # the test-only escape hatch
    assert server.messages[0].tls


def test_starttls_off_and_require(
    make_smtp_server: MakeServer, smtp_server: SMTPTestServer
) -> None:
    tls_server = make_smtp_server(starttls=True)
    with SMTPTransport.from_url(tls_server.url + "?starttls=off", timeout=5) as transport:
        transport.send(email())
    assert not tls_server.messages[0].tls
    with (
        SMTPTransport.from_url(smtp_server.url + "?starttls=require", timeout=5) as transport,
        pytest.raises(ConfigurationError, match="STARTTLS"),
    ):
        transport.send(email())


def test_implicit_tls(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(implicit_tls=True, username="nurture", password="pw")
    assert server.url.startswith("smtps://")
    with SMTPTransport.from_url(server.url, timeout=5, ssl_context=client_ssl_context()) as t:
        t.send(email())
    assert server.messages[0].tls


def test_one_connection_for_many_messages(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    for n in range(5):
        transport.send(email(n))
    results = transport.send_many([email(n) for n in range(5, 15)])
    assert all(isinstance(r, Delivery) for r in results)
    assert len(smtp_server.messages) == 15
    assert smtp_server.connections == 1
    transport.close()
    transport.send(email(99))
    assert smtp_server.connections == 2


def test_4xx_is_transient_and_the_connection_stays_usable(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    smtp_server.respond_next(451)
    with pytest.raises(TransientDeliveryError) as caught:
        transport.send(email(to="jeanne@exemple.fr"))
    error = caught.value
    assert error.transient and error.smtp_code == 451
    assert error.smtp_message and "4.3.0" in error.smtp_message
    assert error.send_id == "send-1" and error.recipient == "jeanne@exemple.fr"
    assert "jeanne@" not in str(error)
    transport.send(email(2))
    assert len(smtp_server.messages) == 1
    assert smtp_server.connections == 1


def test_5xx_is_permanent(smtp_server: SMTPTestServer, transport: SMTPTransport) -> None:
    smtp_server.respond_to("gone@exemple.fr", 550)
    with pytest.raises(PermanentDeliveryError) as caught:
        transport.send(email(to="gone@exemple.fr"))
    assert caught.value.smtp_code == 550 and not caught.value.transient
    assert caught.value.smtp_message == "5.1.1 Mailbox unavailable"
    smtp_server.respond_next(554)
    with pytest.raises(PermanentDeliveryError, match="554"):
        transport.send(email())
    transport.send(email())
    assert len(smtp_server.messages) == 1
    assert smtp_server.connections == 1


def test_a_relay_reply_naming_the_address_is_masked(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    """Relays quote the recipient (`550 5.1.1 <u103@…>`): logs and the send ledger
    get the reply with every address masked, like the recipient already is."""
    smtp_server.respond_to(
        "jeanne.dupont@exemple.fr", 550, "5.1.1 <jeanne.dupont@exemple.fr>: Recipient unknown"
    )
    with pytest.raises(PermanentDeliveryError) as caught:
        transport.send(email(to="jeanne.dupont@exemple.fr"))
    assert "jeanne" not in str(caught.value)
    assert "5.1.1 <j***@exemple.fr>: Recipient unknown" in str(caught.value)
    assert caught.value.recipient == "jeanne.dupont@exemple.fr"  # still there for the code


def test_send_many_reports_each_message(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    smtp_server.respond_to("gone@exemple.fr", 550)
    results = transport.send_many(
        [email(1), email(2, to="gone@exemple.fr"), email(3, to="broken"), email(4)]
    )
    assert [type(r).__name__ for r in results] == [
        "Delivery",
        "PermanentDeliveryError",
        "PermanentDeliveryError",
        "Delivery",
    ]
    assert [m.parsed()[SEND_ID_HEADER] for m in smtp_server.messages] == ["send-1", "send-4"]


def test_421_drops_the_connection_and_the_next_send_reconnects(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    transport.send(email(1))
    smtp_server.respond_next(421)
    with pytest.raises(TransientDeliveryError, match="421"):
        transport.send(email(2))
    transport.send(email(3))
    assert smtp_server.connections == 2


def test_greylisting_at_rcpt_is_transient(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    smtp_server.respond_next(450, "4.2.0 Greylisted, come back later", at="rcpt")
    with pytest.raises(TransientDeliveryError, match="Greylisted") as caught:
        transport.send(email())
    assert caught.value.smtp_code == 450
    transport.send(email())
    assert len(smtp_server.messages) == 1


def test_421_on_a_reused_connection_reconnects_once_on_a_new_one_fails(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    transport.send(email(1))
    smtp_server.respond_next(421, at="mail")
    transport.send(email(2))  # the session was being closed: a fresh one takes it
    assert smtp_server.connections == 2
    transport.close()
    smtp_server.respond_next(421, at="mail")
    with pytest.raises(TransientDeliveryError) as caught:
        transport.send(email(3))
    assert caught.value.smtp_code == 421
    assert len(smtp_server.messages) == 2


def test_a_dropped_idle_connection_is_reopened_transparently(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    transport.send(email(1))
    smtp_server.drop_connections()
    transport.send(email(2))
    smtp_server.restart()
    transport.send(email(3))
    assert [m.parsed()[SEND_ID_HEADER] for m in smtp_server.messages] == [
        "send-1",
        "send-2",
        "send-3",
    ]


def test_a_server_that_is_down_is_transient_and_a_batch_gives_up_fast(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    smtp_server.stop()
    with pytest.raises(TransientDeliveryError, match="cannot connect"):
        transport.send(email())
    results = transport.send_many([email(n) for n in range(20)])
    assert all(isinstance(r, TransientDeliveryError) for r in results)
    assert transport.connections_opened == 0
    smtp_server.start()
    transport.send(email())
    assert len(smtp_server.messages) == 1


def test_a_silent_server_times_out_as_transient() -> None:
    with silent_server() as (host, port):
        transport = SMTPTransport(host, port, timeout=0.5)
        started = time.monotonic()
        with pytest.raises(TransientDeliveryError, match="timed out"):
            transport.send(email())
        assert time.monotonic() - started < 2.0


def test_an_idle_connection_is_replaced_after_max_idle(
    smtp_server: SMTPTestServer, transport: SMTPTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smtp_module, "MAX_IDLE", 0.0)
    transport.send(email(1))
    time.sleep(0.01)
    transport.send(email(2))
    assert smtp_server.connections == 2


# -- pipelining and several connections ---------------------------------------------


def test_pipelining_sends_a_whole_message_and_classifies_refusals(
    make_smtp_server: MakeServer,
) -> None:
    """With PIPELINING offered, MAIL, RCPT and DATA go in one write: the message arrives
    byte for byte (dot-stuffing included) and each refusal is still classified."""
    server = make_smtp_server(pipelining=True)
    server.respond_to("gone@exemple.fr", 550)
    with SMTPTransport.from_url(server.url, timeout=5) as transport:
        transport.send(email())
        with pytest.raises(PermanentDeliveryError) as gone:
            transport.send(email(2, to="gone@exemple.fr"))
        server.respond_next(451)  # at MAIL: greylisted
        with pytest.raises(TransientDeliveryError, match="451"):
            transport.send(email(3))
        transport.send(email(4))
    assert gone.value.smtp_code == 550 and "recipient was refused" in str(gone.value)
    assert [m.parsed()[SEND_ID_HEADER] for m in server.messages] == ["send-1", "send-4"]
    plain = server.messages[0].parsed().get_body(("plain",))
    assert plain is not None and plain.get_content() == wire(TEXT)  # the "." line survived
    assert server.connections == 1  # every refusal left the connection usable


def test_a_pool_sends_a_batch_over_several_connections(make_smtp_server: MakeServer) -> None:
    server = make_smtp_server(pipelining=True)
    server.respond_to("gone@exemple.fr", 550)
    pool = SMTPTransport.from_url(server.url, timeout=5).with_connections(4)
    outcomes: list[tuple[int, str]] = []
    batch = [email(n) for n in range(1, 21)] + [email(21, to="gone@exemple.fr")]
    with pool:
        results = pool.send_many(
            batch, on_result=lambda index, result: outcomes.append((index, type(result).__name__))
        )
    assert [type(r).__name__ for r in results] == ["Delivery"] * 20 + ["PermanentDeliveryError"]
    assert sorted(outcomes) == sorted(enumerate(type(r).__name__ for r in results))
    assert len(server.messages) == 20
    assert 1 < server.connections <= 4


def test_a_pool_stops_trying_a_relay_that_is_down() -> None:
    pool = SMTPTransport.from_url(f"smtp://127.0.0.1:{free_port()}", timeout=2).with_connections(3)
    started = time.monotonic()
    results = pool.send_many([email(n) for n in range(30)])
    assert all(isinstance(r, TransientDeliveryError) for r in results)
    assert sum("not attempted" in str(r) for r in results) >= 25
    assert time.monotonic() - started < 5


def test_the_rate_gate_runs_once_the_relays_session_is_open(
    smtp_server: SMTPTestServer, transport: SMTPTransport
) -> None:
    """A place in `sending.rate` is the moment of hand-off: opening a session first
    (greeting, EHLO, TLS, AUTH: round trips) would make the message reach the relay
    that much later than its place, bunched with the next ones."""
    opened_at_gate: list[int] = []

    def gate() -> None:
        opened_at_gate.append(transport.connections_opened)

    transport.send(email(1), gate=gate)
    transport.send(email(2), gate=gate)
    assert opened_at_gate == [1, 1]
    assert len(smtp_server.messages) == 2


def test_a_pool_stopped_by_an_error_still_records_what_the_relay_took(
    make_smtp_server: MakeServer,
) -> None:
    """An error that stops a batch (a configuration error, the rate limit's store gone)
    must not leave messages already handed over on other connections unrecorded: their
    sends, still leased, would be taken again and sent twice."""
    server = make_smtp_server(pipelining=True)
    pool = SMTPTransport.from_url(server.url, timeout=5).with_connections(3)
    calls: list[int] = []
    lock = threading.Lock()

    def gate() -> None:
        with lock:
            calls.append(len(calls))
            call = len(calls)
        if call == 4:
            raise RuntimeError("the gate broke")
        if call in (2, 3):
            time.sleep(0.3)  # still on their way when the 4th call breaks

    recorded: list[int] = []
    try:
        with pytest.raises(RuntimeError, match="the gate broke"):
            pool.send_many(
                [email(n) for n in range(1, 7)],
                on_result=lambda index, result: recorded.append(index),
                gate=gate,
            )
        time.sleep(0.6)  # anything still on its way has arrived
    finally:
        pool.close()
    received = {m.parsed()[SEND_ID_HEADER] for m in server.messages}
    assert len(received) == 3  # the gate's 1st to 3rd calls (which emails: the threads' race)
    assert received == {f"send-{index + 1}" for index in recorded}
