"""Checking a project's templates as they will be rendered: nurture emails with a
contact, emails to sales (`templates/sales/`) with a handoff too.

`validate` renders every template against a sample; a sales template reading
`handoff.owner` must be checked with a handoff in context, or every sales
email would fail `validate` — and a nurture email reading it must fail.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nurture.definitions import model as m
from nurture.errors import Problem


def sample_sales_context(config: m.ProjectConfig) -> dict[str, Any]:
    """What templates under `sales/` see besides the contact: for `validate` and previews."""
    from nurture.rendering import sample_context

    context = sample_context(config.properties, config.stages)
    context.update(
        unsubscribe_url="",
        view_in_browser_url="",
        timezone=config.sending.default_timezone,
        handoff={
            "id": 1,
            "status": "open",
            "owner": "alice@example.com",
            "created_at": "2026-01-15T09:00:00+00:00",
            "sla_due_at": "2026-01-16T09:00:00+00:00",
            "reason": None,
        },
        snapshot={
            "score": {"total": 104.0, "fit": 20.0, "engagement": 84.0, "by_rule": {}},
            "temperature": "hot",
            "stage_history": [],
            "timeline": [],
            "emails": [],
            "last_content": {
                "at": "2026-01-15T08:00:00+00:00",
                "type": "content.downloaded",
                "title": "Livre blanc",
                "url": "https://example.com/livre",
            },
            "contact": {},
        },
        inbox_url="https://nurture.example.com/sales/handoffs/1",
        #: Set when the recipient has no inbox account: a one-time sign-up link.
        signup_url="https://nurture.example.com/sales/password?token=sample",
        digest={
            "owner": "alice@example.com",
            "since": "2026-01-12T08:00:00+00:00",
            "until": "2026-01-19T08:00:00+00:00",
            "leads": [
                {
                    "handoff": 1,
                    "created_at": "2026-01-15T09:00:00+00:00",
                    "status": "open",
                    "overdue": True,
                    "email": "anne@example.com",
                    "name": "Anne Martin",
                    "company": "Exemple Industrie",
                    "score": 104.0,
                    "temperature": "hot",
                    "history": "subscriber → lead → sql",
                    "last_content": "Livre blanc",
                }
            ],
        },
    )
    return context


def check_templates(templates_dir: Path, config: m.ProjectConfig) -> list[Problem]:
    """Render every template against a sample: sales emails with the sales context."""
    from nurture.definitions.checks import SALES_FOLDER
    from nurture.rendering import TemplateLibrary, sample_context

    library = TemplateLibrary(templates_dir)
    nurture_context = sample_context(config.properties, config.stages)
    sales_context = sample_sales_context(config)
    problems: list[Problem] = []
    for name in library.names():
        context = sales_context if name.startswith(SALES_FOLDER) else nurture_context
        problems += library.check(name, context)
    return problems
