"""What `nurture validate` warns about: definitions that are valid but likely to hurt.

A warning never stops a deploy (`validate --strict` makes them errors): the
project runs as written, but a marketer should see what it will do in the
field before contacts do.
"""

from __future__ import annotations

from nurture.definitions import model as m
from nurture.errors import Problem
from nurture.events import is_engagement


def config_warnings(config: m.ProjectConfig) -> list[Problem]:
    """Warnings about nurture.yaml alone."""
    warnings = []
    for index, rule in enumerate(config.scoring.rules):
        if (
            rule.points > 0
            and is_engagement(rule.event)
            and rule.max_per_day is None
            and rule.max_total is None
        ):
            counted = "every signal, machines' too" if rule.count == "all" else "every one"
            warnings.append(
                Problem(
                    rule.file,
                    rule.line,
                    f"warning: scoring.rules[{index}] ({rule.event}, {rule.points:+g}) has no "
                    f"cap: {counted} scores, so a contact who repeats it (or a script that "
                    "does) can climb to sales on it alone; add max_per_day or max_total",
                    f"scoring.rules[{index}]",
                )
            )
    return warnings
