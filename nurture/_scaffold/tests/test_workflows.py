"""Tests de nos parcours : tels contacts, tels événements, on attend tels e-mails.

Lancez-les avec `pytest` depuis le dossier du projet. `simulate` fait tourner
le vrai moteur de nurture sur une horloge virtuelle (un mois en une seconde).
"""

from __future__ import annotations

from datetime import timedelta

from nurture.testing import Simulate

START = "2026-01-05T08:00:00+00:00"  # un lundi, 9 h à Paris : dans la fenêtre d'envoi
ANNE = {"email": "anne@example.com", "first_name": "Anne", "stage": "lead"}


def test_un_nouveau_lead_recoit_le_guide_deux_jours_apres(simulate: Simulate) -> None:
    result = simulate(contacts=[ANNE], start=START, days=4)

    emails = result.emails_to("anne@example.com")
    assert [template for template, _ in emails] == ["lead/bienvenue", "lead/guide"]
    assert emails[1][1] - emails[0][1] == timedelta(days=2)


def test_sans_clic_le_lead_sort_du_parcours(simulate: Simulate) -> None:
    result = simulate(contacts=[ANNE], start=START, days=10)

    assert result.exits("anne@example.com") == [("lead-nurture", "sans-reaction")]


def test_un_clic_sur_le_guide_termine_le_parcours(simulate: Simulate) -> None:
    clic = {"type": "email.clicked", "email": "anne@example.com", "at": "+2d2h", "step": "guide"}
    result = simulate(contacts=[ANNE], events=[clic], start=START, days=10)

    assert result.exits("anne@example.com") == [("lead-nurture", "completed")]


def test_un_lead_qui_depasse_100_points_passe_aux_ventes(simulate: Simulate) -> None:
    email = "anne@example.com"
    events = [
        {"type": "content.downloaded", "email": email, "at": "+1d"},
        {
            "type": "page.visited",
            "email": email,
            "at": "+1d1h",
            "url": "https://example.com/pricing",
        },
        {
            "type": "page.visited",
            "email": email,
            "at": "+1d2h",
            "url": "https://example.com/pricing",
        },
        {"type": "demo.requested", "email": email, "at": "+1d3h"},
        {"type": "content.downloaded", "email": email, "at": "+1d4h"},
    ]
    result = simulate(contacts=[ANNE], events=events, start=START, days=10)

    assert result.stages_of(email)[-1] == "sql"
    (handoff,) = result.handoffs()
    assert handoff.owner in {"commercial1@example.com", "commercial2@example.com"}
    assert all(at <= handoff.at for _, at in result.emails_to(email))  # plus de nurturing


def test_un_contact_desabonne_ne_recoit_plus_rien(simulate: Simulate) -> None:
    desabonnement = {"type": "email.unsubscribed", "email": "anne@example.com", "at": "+1h"}
    result = simulate(contacts=[ANNE], events=[desabonnement], start=START, days=10)

    assert result.templates_to("anne@example.com") == ["lead/bienvenue"]
