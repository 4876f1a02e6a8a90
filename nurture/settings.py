"""Runtime configuration: `NURTURE_*` environment variables and `.env`.

One resolver, `get_settings()`, so every command sees the same values. With
nothing set, nurture runs embedded: a SQLite file in the working directory, the
in-process broker and an outbox folder of `.eml` files. A nonsense value is a
`ConfigurationError` naming the variable, raised before any work starts.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from nurture.errors import ConfigurationError
from nurture.tokens import Signer

DEFAULT_DATABASE_URL = "sqlite:///nurture.sqlite3"
#: The shortest secret or key accepted: shorter ones fall to a guess (issue #16 found
#: one-character API keys and webhook secrets accepted).
MIN_SECRET_LENGTH = 16
SECRET_FILE = ".nurture-secret"


class Settings(BaseSettings):
    """Runtime configuration: `NURTURE_*` variables and `.env`, read through `get_settings()`."""

    model_config = SettingsConfigDict(
        env_prefix="NURTURE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    smtp_url: str | None = None
    #: A PEM file of the CA that signed the relay's certificate (a private CA, or the
    #: relay's self-signed certificate itself), trusted on top of the system's.
    smtp_ca_file: Path | None = None
    outbox_dir: Path = Path("outbox")
    secret_key: str | None = Field(default=None, repr=False)
    #: Keys used before `secret_key` (comma-separated): tokens they signed still verify.
    previous_secret_keys: str = Field(default="", repr=False)
    base_url: str = "http://localhost:8000"
    api_keys: str = Field(default="", repr=False)
    #: HMAC-SHA256 secret of the generic ESP webhook (`X-Nurture-Signature: sha256=<hex>`).
    webhook_secret: str | None = Field(default=None, repr=False)
    #: Mailgun's "HTTP webhook signing key" (Mailgun signs timestamp + token with it).
    mailgun_signing_key: str | None = Field(default=None, repr=False)
    #: SendGrid's Signed Event Webhook "verification key": its ECDSA public key, base64 DER.
    sendgrid_verification_key: str | None = Field(default=None, repr=False)
    #: Postmark webhooks' shared secret: basic auth password or a bearer token.
    postmark_webhook_token: str | None = Field(default=None, repr=False)
    #: Brevo webhooks' shared secret: basic auth password or a bearer token.
    brevo_webhook_token: str | None = Field(default=None, repr=False)
    #: The Amazon SNS topics (ARNs, comma-separated) whose SES notifications are
    #: read; ``*`` reads any topic. Unset: the SES webhook refuses everything.
    ses_topic_arns: str = ""
    project_dir: Path = Path(".")
    #: How long a worker holds claimed work before another may take it over.
    lease_seconds: float = Field(default=120.0, gt=0)
    #: DKIM signing (all three or none): selector, signing domain (d=), and the
    #: RSA private key as PEM text or the path of a PEM file.
    dkim_selector: str | None = None
    dkim_domain: str | None = None
    dkim_private_key: str | None = Field(default=None, repr=False)
    #: `text` (rich, for people) or `json` (one object per line, for log collectors).
    log_format: Literal["text", "json"] = "text"
    #: When set, `/metrics` wants `Authorization: Bearer <token>`; open otherwise.
    metrics_token: str | None = Field(default=None, repr=False)
    #: `nurture bounces read --imap`: imaps://user:password@host[:993]/Folder
    #: (imap://… uses STARTTLS); checked when it is used.
    bounces_imap_url: str | None = Field(default=None, repr=False)
    #: The largest request body any route reads (bytes); more is refused with 413.
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024, le=1024**3)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError(f"not a database URL ({exc})") from None
        if url.get_backend_name() not in {"sqlite", "postgresql"}:
            raise ValueError("only sqlite:// and postgresql:// databases are supported")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"redis", "rediss", "unix"} or (
            parts.scheme != "unix" and not parts.hostname
        ):
            raise ValueError("expected redis://host:port/db, rediss://… or unix://…")
        return value

    @field_validator("smtp_ca_file")
    @classmethod
    def _smtp_ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"no such file: {value} (a PEM file of the relay's CA)")
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if parts.scheme not in {"smtp", "smtps"} or not parts.hostname:
            raise ValueError("expected smtp://user:pass@host:port or smtps://…")
        try:
            parts.port  # noqa: B018 - raises on a non-numeric port
        except ValueError:
            raise ValueError("the port is not a number") from None
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("expected an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator(
        "secret_key",
        "webhook_secret",
        "mailgun_signing_key",
        "postmark_webhook_token",
        "brevo_webhook_token",
        "metrics_token",
    )
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and len(value) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"must be at least {MIN_SECRET_LENGTH} characters (this one has {len(value)})"
            )
        return value

    @field_validator("api_keys", "previous_secret_keys")
    @classmethod
    def _secret_list(cls, value: str) -> str:
        for number, key in enumerate((k.strip() for k in value.split(",")), start=1):
            if key and len(key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"every key must be at least {MIN_SECRET_LENGTH} characters"
                    f" (key {number} of the list has {len(key)})"
                )
        return value

    @field_validator("sendgrid_verification_key")
    @classmethod
    def _sendgrid_verification_key(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            key = load_der_public_key(base64.b64decode(value.strip(), validate=True))
        except (binascii.Error, ValueError, TypeError):
            key = None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError(
                "not an ECDSA public key in base64 DER (paste SendGrid's verification key)"
            )
        return value.strip()

    @field_validator("ses_topic_arns")
    @classmethod
    def _ses_topic_arns(cls, value: str) -> str:
        for arn in (a.strip() for a in value.split(",")):
            if arn and arn != "*" and not (arn.startswith("arn:aws") and arn.count(":") == 5):
                raise ValueError(
                    f"not an SNS topic ARN: {arn[:100]!r} (arn:aws:sns:REGION:ACCOUNT:NAME)"
                )
        return value

    @property
    def ses_topic_arn_list(self) -> list[str]:
        return [arn.strip() for arn in self.ses_topic_arns.split(",") if arn.strip()]

    @property
    def embedded(self) -> bool:
        """Everything local: SQLite, in-process broker, outbox folder."""
        return (
            self.database_url.startswith("sqlite")
            and self.redis_url is None
            and self.smtp_url is None
        )

    @property
    def api_key_list(self) -> list[str]:
        return [key.strip() for key in self.api_keys.split(",") if key.strip()]

    def previous_signing_keys(self) -> list[str]:
        """The retired keys links in mail already sent may still be signed with."""
        return [key.strip() for key in self.previous_secret_keys.split(",") if key.strip()]

    def signer(self) -> Signer:
        """Signs new tokens with `signing_key`; verifies those of the previous keys too."""
        return Signer(self.signing_key(), self.previous_signing_keys())

    def signing_key(self) -> str:
        """The key for tracking and unsubscribe tokens.

        Embedded installs get a random key kept in `.nurture-secret` so links in
        already-sent mail stay valid across restarts; anything talking to real
        services must be given one, or tokens would be forgeable.
        """
        if self.secret_key:
            return self.secret_key
        if not self.embedded:
            raise ConfigurationError(
                "NURTURE_SECRET_KEY: required when PostgreSQL, Redis or SMTP is configured"
            )
        path = Path(SECRET_FILE)
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        key = secrets.token_urlsafe(32)
        path.write_text(key + "\n", encoding="utf-8")
        os.chmod(path, 0o600)
        return key


_SECRET_FIELDS = {
    "secret_key",
    "previous_secret_keys",
    "api_keys",
    "smtp_url",
    "webhook_secret",
    "mailgun_signing_key",
    "sendgrid_verification_key",
    "postmark_webhook_token",
    "brevo_webhook_token",
    "dkim_private_key",
    "metrics_token",
    "bounces_imap_url",
}


def load_settings(**overrides: Any) -> Settings:
    """Build settings, turning validation errors into one readable message."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            message = str(err["msg"]).removeprefix("Value error, ")
            shown = "" if field in _SECRET_FIELDS else f" (got {err.get('input')!r})"
            lines.append(f"NURTURE_{field.upper()}: {message}{shown}")
        raise ConfigurationError("\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
