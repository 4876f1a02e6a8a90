"""`nurture simulate`'s machine traffic: a gateway or an image proxy drawn from the reactions
file goes through the real ingest, is recorded as a machine's and scores nothing."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from rich.console import Console

from nurture.definitions.base import parse_duration
from nurture.testing import simulate_project, write_project
from nurture.testing.simulation import SimResult
from nurture.tools.output import print_summary, timeline_line
from nurture.tools.reactions import (
    GATEWAY_AGENT,
    MachineTraffic,
    Reaction,
    SimulationError,
    load_reactions,
)

CONFIG = """\
stages: [subscriber, lead, mql, sql]
prospect_stage: sql
scoring:
  rules:
    - {event: email.opened, points: 5}
    - {event: email.clicked, points: 50}
  thresholds: {mql: 40, sql: 100}
"""
LEAD = """\
name: lead-nurture
enroll: {stage: lead}
steps:
  - send: lead/welcome
  - id: wait-click
    wait_for: {event: email.clicked, timeout: 3d}
    on_timeout: done
  - id: guide
    send: lead/guide
  - id: done
    score: {points: 0}
"""
TEMPLATE = """\
---
subject: "{subject}"
---
<mjml><mj-body><mj-section><mj-column>
<mj-text>Bonjour, <a href="https://example.com/{name}">lire</a>
 · <a href="https://example.com/pricing">tarifs</a></mj-text>
<mj-text><a href="{{{{ unsubscribe_url }}}}">Se désabonner</a></mj-text>
</mj-column></mj-section></mj-body></mjml>
"""
CONTACTS = [
    {"email": f"{name}@example.com", "first_name": name.title(), "stage": "lead"}
    for name in ("anne", "bob", "carla")
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_project(
        tmp_path / "project",
        CONFIG,
        {"lead-nurture": LEAD},
        {
            f"lead/{name}": TEMPLATE.format(subject=subject, name=name)
            for name, subject in (("welcome", "Bienvenue"), ("guide", "Le guide"))
        },
    )


def _run(project: Path, *reactions: Reaction | MachineTraffic) -> SimResult:
    return simulate_project(project, CONTACTS, days=5, reactions=reactions)


def _events(result: SimResult) -> list[dict[str, object]]:
    return [r.as_json() for r in result.records if r.kind == "event"]


def test_a_gateway_fetches_every_link_and_the_pixel_as_a_machine(project: Path) -> None:
    result = _run(project, MachineTraffic(1.0))
    events = _events(result)
    # Each welcome: the pixel and both links (the unsubscribe link is no tracked click).
    assert Counter(e["event"] for e in events) == {"email.opened": 3, "email.clicked": 6}
    assert {(e["traffic"], e["traffic_reason"]) for e in events} == {
        ("machine", "user agent: Proofpoint")
    }
    assert {e["url"] for e in events if e["event"] == "email.clicked"} == {
        "https://example.com/welcome",
        "https://example.com/pricing",
    }
    assert {e["template"] for e in events} == {"lead/welcome"}
    assert result.simulation.signals == {"machine": {"email.opened": 3, "email.clicked": 6}}
    # Nothing scored, no wait ended: nobody reached mql, nobody got the guide.
    for contact in CONTACTS:
        assert result.stages_of(contact["email"]) == ["lead"]  # the import's, no more
        assert result.templates_to(contact["email"]) == ["lead/welcome"]


def test_the_same_clicks_by_a_person_score_and_end_the_wait(project: Path) -> None:
    """The control: what the gateway's clicks would have done had they been a person's."""
    result = _run(project, Reaction("lead/welcome", "email.clicked", timedelta_of("1h"), 1.0))
    assert [e.get("traffic") for e in _events(result)] == [None] * 3  # human: no class shown
    assert result.stages_of("anne@example.com") == ["lead", "mql"]
    assert result.templates_to("anne@example.com") == ["lead/welcome", "lead/guide"]


def test_an_image_proxy_opens_only_and_a_template_can_be_chosen(project: Path) -> None:
    result = _run(project, MachineTraffic(1.0, by="image-proxy", template="lead/welcome"))
    events = _events(result)
    assert [(e["event"], e["traffic_reason"]) for e in events] == [
        ("email.opened", "image proxy: Apple Mail Privacy Protection")
    ] * 3
    assert _events(_run(project, MachineTraffic(1.0, template="lead/guide"))) == []


def test_a_share_of_the_emails_is_drawn_with_the_seed(project: Path) -> None:
    contacts = [
        {"email": f"c{n}@example.com", "first_name": "C", "stage": "lead"} for n in range(40)
    ]

    def scanned(seed: int) -> set[object]:
        result = simulate_project(
            project, contacts, days=1, seed=seed, reactions=[MachineTraffic(0.4)]
        )
        return {e["contact"] for e in _events(result)}

    first = scanned(3)
    assert 6 <= len(first) <= 26 and first == scanned(3)


def test_reactions_are_judged_like_real_traffic(project: Path) -> None:
    """A reaction names its send as a tracking link would: one that comes seconds after
    delivery is a machine's; a person opening after the proxy did is a person."""
    result = _run(
        project,
        MachineTraffic(1.0, by="image-proxy"),
        Reaction("lead/welcome", "email.opened", timedelta_of("5s"), 1.0),
        Reaction("lead/welcome", "email.opened", timedelta_of("2h"), 1.0),
    )
    anne = [e for e in _events(result) if e["contact"] == "anne@example.com"]
    assert [(e.get("traffic"), e.get("traffic_reason")) for e in anne] == [
        ("machine", "image proxy: Apple Mail Privacy Protection"),
        ("machine", "opened 5s after delivery (a scanner)"),
        (None, None),
    ]
    assert result.simulation.signals == {
        "machine": {"email.opened": 6},
        "human": {"email.opened": 3},
    }


def test_the_timeline_and_the_summary_show_the_machines(project: Path) -> None:
    result = _run(
        project,
        MachineTraffic(1.0),
        Reaction("lead/welcome", "email.opened", timedelta_of("2h"), 1.0),
    )
    [line] = [
        timeline_line(r)
        for r in result.records
        if r.kind == "event"
        and r.contact == "anne@example.com"
        and r.details["event"] == "email.opened"
        and r.details.get("traffic")
    ]
    assert line.endswith("email.opened — machine: user agent: Proofpoint (not scored)")
    console = Console(record=True, width=200)
    print_summary(console, result.simulation)
    assert (
        "Opens and clicks: 3 by people, 9 by machines (3 opens, 6 clicks: gateways and image "
        "proxies, not scored), 0 repeats" in console.export_text()
    )


def test_the_timeline_shows_each_score_change_with_its_rule_and_event(project: Path) -> None:
    """SPEC §7: a `score` record per ledger row, between the event and the stage it caused."""
    result = _run(project, Reaction("lead/welcome", "email.clicked", timedelta_of("1h"), 1.0))
    anne = [r for r in result.timeline("anne@example.com") if r.kind in ("event", "score", "stage")]
    assert [r.kind for r in anne] == ["stage", "event", "score", "stage", "score"]
    click, score, stage, step = (r.as_json() for r in anne[1:])
    assert (click["event"], stage["to"]) == ("email.clicked", "mql")
    assert {k: v for k, v in score.items() if k != "event_id"} == {
        "at": click["at"],
        "contact": "anne@example.com",
        "kind": "score",
        "points": 50.0,
        "score": 50.0,
        "rule": "rule:1:email.clicked",
        "cause": "engagement",
        "event": "email.clicked",
    }
    assert timeline_line(anne[2]).split()[3:] == [
        "score",
        "+50",
        "→",
        "50",
        "email.clicked",
        "(rule:1:email.clicked)",
    ]
    # The workflow's own `score` step (0 points at `done`), where it happened.
    assert (step["workflow"], step["step"], step["rule"], step["cause"]) == (
        "lead-nurture",
        "done",
        "lead-nurture/done",
        "manual",
    )
    # What nurture.testing gives a marketer's test.
    assert [(c.points, c.score, c.rule, c.event) for c in result.scores("anne@example.com")] == [
        (50, 50, "rule:1:email.clicked", "email.clicked"),
        (0, 50, "lead-nurture/done", None),
    ]


def test_the_send_record_names_its_send(project: Path) -> None:
    result = _run(project)
    sends = [r.as_json() for r in result.records if r.kind == "send"]
    assert sorted(s["send_id"] for s in sends) == [1, 2, 3]


# --- the reactions file -------------------------------------------------------------------


def test_machine_entries_are_read_from_the_reactions_file(tmp_path: Path) -> None:
    path = tmp_path / "reactions.yaml"
    path.write_text(
        "- {template: lead/welcome, event: email.opened, after: 1h, rate: 0.5}\n"
        "- machine: 0.4\n"
        "- {machine: 0.3, by: image-proxy, template: lead/guide, after: 5s}\n"
    )
    assert load_reactions(path) == [
        Reaction("lead/welcome", "email.opened", timedelta_of("1h"), 0.5),
        MachineTraffic(0.4),
        MachineTraffic(0.3, "image-proxy", "lead/guide", timedelta_of("5s")),
    ]


def test_every_bad_reaction_is_named_with_its_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "reactions.yaml"
    path.write_text(
        "# synthetic engagement\n"
        "- {template: lead/welcome, event: email.opened, after: 1h, rate: 0.5}\n"
        "- machine: 1.5\n"
        "- machine: 0.4\n"
        "  by: gatway\n"
        "- {machin: 0.4}\n"
        "- {machine: 0.2, after: soon}\n"
        "- {template: lead/welcome, event: email.opened, after: 1h, rate: yes}\n"
        "- {template: lead/welcome, event: email.opened}\n"
    )
    with pytest.raises(SimulationError) as caught:
        load_reactions(path)
    assert str(caught.value).splitlines() == [
        f"{path}:3: reaction 2: machine must be between 0 and 1 (the share of sent emails a "
        "machine fetches), not 1.5",
        f"{path}:5: reaction 3: by: expected gateway or image-proxy, not 'gatway' "
        "(did you mean 'gateway'?)",
        f"{path}:6: reaction 4: unknown key 'machin' (did you mean 'machine'?) "
        "(expected template, event, after, rate, properties)",
        f"{path}:7: reaction 5: invalid duration 'soon'",
        f"{path}:8: reaction 6: rate must be between 0 and 1, not 'yes'",
        f"{path}:9: reaction 7: needs template, event, after and rate (missing after, rate); "
        "or machine: the share of sent emails a mail gateway or image proxy fetches",
    ]


def test_a_reactions_file_that_is_not_a_list_or_not_yaml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "reactions.yaml"
    path.write_text("machine: 0.4\n")
    with pytest.raises(SimulationError, match=rf"^{path}:1: expected a list of reactions$"):
        load_reactions(path)
    path.write_text("- {machine: 0.4\n")
    # Reported where the brace opens, not at the end of the file where PyYAML gave up.
    with pytest.raises(
        SimulationError, match=rf"^{path}:1: invalid YAML: the {{ opened .* not closed"
    ):
        load_reactions(path)


def timedelta_of(text: str) -> timedelta:
    found = parse_duration(text)
    assert found is not None
    return found


def test_the_gateway_agent_is_one_the_classifier_knows() -> None:
    from nurture.lifecycle.traffic import machine_agent

    assert machine_agent(GATEWAY_AGENT) == "Proofpoint"


def test_an_event_at_an_absolute_time_is_simulated_then(project: Path) -> None:
    """`nurture.testing` takes an event's `at` as a datetime too (it overflowed once)."""
    from datetime import UTC, datetime

    at = datetime(2026, 1, 6, 9, tzinfo=UTC)
    result = simulate_project(
        project,
        CONTACTS[:1],
        [{"type": "page.visited", "email": CONTACTS[0]["email"], "at": at, "url": "/pricing"}],
        days=3,
    )
    [visit] = [
        r for r in result.records if r.kind == "event" and r.details.get("event") == "page.visited"
    ]
    assert visit.at == at
