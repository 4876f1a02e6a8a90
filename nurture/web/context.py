"""What every route needs, built once per app: the engine, settings, signer, links.

Routers get it through the `web_context` dependency instead of module globals,
so an app factory can build several independent apps (tests do, on throwaway
SQLite databases) and nothing is read from the environment at request time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from fastapi import Request

from nurture.contacts.parsing import ContactParser
from nurture.delivery.links import Links
from nurture.engine.service import Engine
from nurture.lifecycle.ingest import Ingestor
from nurture.lifecycle.website import Website
from nurture.rendering import TemplateLibrary
from nurture.settings import Settings
from nurture.tokens import Signer
from nurture.web.esp.sns import SnsCertificates


@dataclass
class WebContext:
    """Everything a route needs, built once per app (`build`) and reached through `web_context`."""

    engine: Engine
    settings: Settings
    signer: Signer
    links: Links
    ingestor: Ingestor
    website: Website
    contacts: ContactParser
    templates: TemplateLibrary
    #: Amazon SNS's signing certificates (the SES webhook), and how they are fetched.
    sns: SnsCertificates = field(default_factory=SnsCertificates)
    _sales_signer: Signer | None = field(default=None, repr=False)

    def sales_signer(self) -> Signer:
        """Signs the sales inbox's session cookies and CSRF tokens (NURTURE_SECRET_KEY).

        Built on first use: an app that never serves `/sales` never needs the key.
        """
        if self._sales_signer is None:
            self._sales_signer = self.settings.signer()
        return self._sales_signer

    @classmethod
    def build(cls, engine: Engine, settings: Settings) -> WebContext:
        # Tokens must verify with the key the engine signed its links with.
        signer = engine.signer or settings.signer()
        config = engine.project.config
        return cls(
            engine=engine,
            settings=settings,
            signer=signer,
            links=Links(signer, engine.options.base_url),
            ingestor=engine.lifecycle.ingestor,
            website=Website(engine.sessions, engine.lifecycle.ingestor, config.tracking),
            contacts=ContactParser(config.stages, config.properties, typed=True),
            templates=TemplateLibrary(engine.project.templates_dir),
        )


def web_context(request: Request) -> WebContext:
    """FastAPI dependency: the app's `WebContext`."""
    return cast(WebContext, request.app.state.nurture)
