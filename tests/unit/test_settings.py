"""Settings: embedded defaults, and a clear error naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from nurture.errors import ConfigurationError, NurtureError
from nurture.settings import DEFAULT_DATABASE_URL, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NURTURE_* from the developer's shell, and no .env from the checkout."""
    import os

    for name in list(os.environ):
        if name.startswith("NURTURE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_nothing_set_means_embedded_defaults() -> None:
    settings = load_settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url is None and settings.smtp_url is None
    assert settings.embedded


def test_values_come_from_the_environment_and_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "NURTURE_REDIS_URL=redis://127.0.0.1:6379/2\nNURTURE_API_KEYS=k1-0123456789abcdef, k2-0123456789abcdef\n"
    )
    monkeypatch.setenv("NURTURE_DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    settings = load_settings()
    assert settings.redis_url == "redis://127.0.0.1:6379/2"
    assert settings.database_url.startswith("postgresql://")
    assert settings.api_key_list == ["k1-0123456789abcdef", "k2-0123456789abcdef"]
    assert not settings.embedded


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("NURTURE_DATABASE_URL", "mysql://x@y/z", "only sqlite:// and postgresql://"),
        ("NURTURE_DATABASE_URL", "not a url", "not a database URL"),
        ("NURTURE_REDIS_URL", "localhost:6379", "expected redis://host:port/db"),
        ("NURTURE_SMTP_URL", "smtp://host:port", "the port is not a number"),
        ("NURTURE_SMTP_URL", "http://mail.example.com", "expected smtp://"),
        ("NURTURE_BASE_URL", "example.com", "expected an http:// or https:// URL"),
        ("NURTURE_SECRET_KEY", "short", "at least 16 characters"),
        ("NURTURE_API_KEYS", "a-long-enough-api-key, k", "key 2 of the list has 1"),
        ("NURTURE_PREVIOUS_SECRET_KEYS", "old", "at least 16 characters"),
        ("NURTURE_WEBHOOK_SECRET", "s", "at least 16 characters (this one has 1)"),
        ("NURTURE_MAILGUN_SIGNING_KEY", "mailgun", "at least 16 characters"),
        ("NURTURE_POSTMARK_WEBHOOK_TOKEN", "pm", "at least 16 characters"),
        ("NURTURE_BREVO_WEBHOOK_TOKEN", "brevo", "at least 16 characters"),
        ("NURTURE_METRICS_TOKEN", "metrics", "at least 16 characters"),
    ],
)
def test_a_nonsense_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    text = str(raised.value)
    assert text.startswith(f"{variable}: ")
    assert message in text


def test_secrets_are_never_echoed_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_SECRET_KEY", "tiny!")
    monkeypatch.setenv("NURTURE_SMTP_URL", "smtp://user:hunter2@host:nope")
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    assert "tiny!" not in str(raised.value) and "hunter2" not in str(raised.value)


def test_configuration_errors_are_not_nurture_errors() -> None:
    """Retry loops catch NurtureError; a broken deployment must not be retried."""
    assert not issubclass(ConfigurationError, NurtureError)


def test_embedded_mode_keeps_one_signing_key_across_restarts() -> None:
    first = load_settings().signing_key()
    assert len(first) >= 32
    assert load_settings().signing_key() == first
    assert (Path(".nurture-secret").stat().st_mode & 0o777) == 0o600


def test_real_services_require_a_secret_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NURTURE_REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="NURTURE_SECRET_KEY: required"):
        load_settings().signing_key()
    monkeypatch.setenv("NURTURE_SECRET_KEY", "x" * 32)
    assert load_settings().signing_key() == "x" * 32


def test_esp_webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def der(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
        public = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(public).decode()

    good = der(ec.generate_private_key(ec.SECP256R1()))
    monkeypatch.setenv("NURTURE_SENDGRID_VERIFICATION_KEY", f" {good}\n")
    monkeypatch.setenv("NURTURE_SES_TOPIC_ARNS", "arn:aws:sns:eu-west-1:123456789012:ses, *")
    settings = load_settings()
    assert settings.sendgrid_verification_key == good
    assert settings.ses_topic_arn_list == ["arn:aws:sns:eu-west-1:123456789012:ses", "*"]
    assert good not in repr(settings)
    for bad in (
        "not base64!",
        base64.b64encode(b"junk").decode(),
        der(rsa.generate_private_key(65537, 2048)),
    ):
        monkeypatch.setenv("NURTURE_SENDGRID_VERIFICATION_KEY", bad)
        with pytest.raises(
            ConfigurationError, match="NURTURE_SENDGRID_VERIFICATION_KEY: not an ECDSA"
        ) as raised:
            load_settings()
        assert bad not in str(raised.value)
    monkeypatch.delenv("NURTURE_SENDGRID_VERIFICATION_KEY")
    monkeypatch.setenv("NURTURE_SES_TOPIC_ARNS", "my-topic")
    with pytest.raises(ConfigurationError, match="NURTURE_SES_TOPIC_ARNS: not an SNS topic ARN"):
        load_settings()
