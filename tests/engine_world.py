"""A one-workflow project (a lead nurture: welcome, wait, guide, wait for a click),
for the engine, deployment and send-path tests to run `nurture.testing.Harness` on.

`project_dir` is a fixture, made available to every test by `tests/conftest.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nurture.testing import START, write_project

__all__ = ["CONFIG", "LEAD", "START", "TEMPLATE", "project_dir"]

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
properties: {industry: string}
sending:
  from: "Équipe Exemple <bonjour@example.com>"
  reply_to: ventes@example.com
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - wait: 2d
  - id: guide
    send: lead/guide
  - wait_for: {event: email.clicked, match: "event.step == 'guide'", timeout: 5d}
    on_event: thanks
  - exit: no-click
  - id: thanks
    send: lead/thanks
"""
TEMPLATE = """\
---
subject: "{subject} pour {{{{ contact.company }}}}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour {{{{ contact.first_name }}}} ({{{{ contact.company }}}}), <a href="https://example.com/{name}">lire</a></mj-text>
<mj-text><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "project",
        CONFIG,
        {"lead-nurture": LEAD},
        {
            f"lead/{name}": TEMPLATE.format(subject=subject, name=name)
            for name, subject in (
                ("welcome", "Bienvenue"),
                ("guide", "Le guide"),
                ("thanks", "Merci"),
            )
        },
    )
