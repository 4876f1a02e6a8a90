"""Checks that need more than one file: names, templates, cross references.

Each check returns problems rather than raising, so `validate` lists all of
them at once (python-statemachine's loader style).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from nurture.definitions import model as m
from nurture.definitions.base import did_you_mean
from nurture.errors import Problem

#: The template an owner's handoff email uses when `notify` names none.
DEFAULT_HANDOFF_TEMPLATE = "sales/handoff"
#: The SLA's reminder to the owner and escalation emails.
REMINDER_TEMPLATE = "sales/reminder"
ESCALATION_TEMPLATE = "sales/escalation"
#: Templates under this folder are emails to sales: they also get `handoff`,
#: `snapshot` and `inbox_url`, and no unsubscribe link is expected.
SALES_FOLDER = "sales/"


def check_project(
    config: m.ProjectConfig,
    workflows: Iterable[m.Workflow],
    template_names: set[str],
    templates_dir: str = "templates",
) -> list[Problem]:
    workflows = list(workflows)
    problems: list[Problem] = []
    problems += _unique_names(workflows)
    problems += _templates_exist(config, workflows, template_names, templates_dir)
    problems += _workflow_references(config, {w.name: w for w in workflows})
    return problems


def _unique_names(workflows: list[m.Workflow]) -> list[Problem]:
    first: dict[str, m.Workflow] = {}
    problems = []
    for workflow in workflows:
        if workflow.name in first:
            other = first[workflow.name]
            problems.append(
                Problem(
                    workflow.file,
                    workflow.line,
                    f"workflow name '{workflow.name}' is already used by {other.file}",
                    "name",
                )
            )
        else:
            first[workflow.name] = workflow
    return problems


def template_references(
    config: m.ProjectConfig, workflows: Iterable[m.Workflow]
) -> list[tuple[str, str, int | None, str]]:
    """Every template a project sends: (template, file, line, key path)."""
    found: list[tuple[str, str, int | None, str]] = []
    for workflow in workflows:
        for step in workflow.steps:
            if isinstance(step, m.SendStep) and step.variants:
                found += [
                    (v.template, v.file, v.line, f"steps[{step.index}].send.variants.{v.name}")
                    for v in step.variants
                ]
            elif isinstance(step, m.SendStep):
                found.append((step.template, step.file, step.line, f"steps[{step.index}].send"))
            elif isinstance(step, m.NotifyStep) and step.notify.template:
                found.append(
                    (
                        step.notify.template,
                        step.file,
                        step.line,
                        f"steps[{step.index}].notify.template",
                    )
                )
    if config.handoff:
        for i, notify in enumerate(config.handoff.notify):
            if notify.kind == "email":
                found.append(
                    (
                        notify.template or DEFAULT_HANDOFF_TEMPLATE,
                        notify.file,
                        notify.line,
                        f"handoff.notify[{i}].template",
                    )
                )
        sla = config.handoff.sla
        if sla.accept_within:
            found.append((REMINDER_TEMPLATE, config.file, config.handoff.line, "handoff.sla"))
        if sla.accept_within and sla.escalate_to:
            found.append((ESCALATION_TEMPLATE, config.file, config.handoff.line, "handoff.sla"))
    return found


def _templates_exist(
    config: m.ProjectConfig,
    workflows: list[m.Workflow],
    template_names: set[str],
    templates_dir: str,
) -> list[Problem]:
    problems = []
    for template, file, line, path in template_references(config, workflows):
        if template not in template_names:
            problems.append(
                Problem(
                    file,
                    line,
                    f"template '{template}' not found (expected "
                    f"{templates_dir}/{template}.mjml)"
                    f"{did_you_mean(template, template_names)}",
                    path,
                )
            )
    return problems


def _workflow_references(
    config: m.ProjectConfig, workflows: Mapping[str, m.Workflow]
) -> list[Problem]:
    problems = []
    handoff = config.handoff
    if handoff and handoff.on_reject.workflow and handoff.on_reject.workflow not in workflows:
        name = handoff.on_reject.workflow
        problems.append(
            Problem(
                config.file,
                handoff.on_reject.line,
                f"handoff.on_reject.workflow: no workflow "
                f"named '{name}'{did_you_mean(name, workflows)}",
                "handoff.on_reject.workflow",
            )
        )
    return problems
