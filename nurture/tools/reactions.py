"""The reactions file of `nurture simulate`: how synthetic people (and machines) react.

Each entry is a `Reaction` (after a send of `template`, `event` follows
`after` later with probability `rate`) or `MachineTraffic` (a mail gateway or
an image proxy hitting a share of the emails). Read with the project's
line-aware YAML reader, so every problem is `file:line: reaction N: message`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from nurture.definitions.base import did_you_mean, parse_duration
from nurture.definitions.reader import LineDict, LineList, load_yaml
from nurture.errors import NurtureError


class SimulationError(NurtureError):
    """The simulation inputs are not valid."""


@dataclass(frozen=True)
class Reaction:
    """After a send of `template`, `event` follows `after` later with probability `rate`."""

    template: str
    event: str
    after: timedelta
    rate: float
    properties: dict[str, Any] = field(default_factory=dict)


#: What a mail gateway's link checker calls itself (`nurture.lifecycle.traffic` knows it).
GATEWAY_AGENT = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
#: Apple Mail Privacy Protection loads every pixel with a bare agent.
IMAGE_PROXY_AGENT = "Mozilla/5.0"
#: Who makes machine traffic: a gateway fetches every link and the pixel, a proxy the pixel.
MACHINES = ("gateway", "image-proxy")


@dataclass(frozen=True)
class MachineTraffic:
    """After a send of `template` (of any email when None), with probability `rate`, a
    machine reacts `after` it leaves: a mail gateway fetches every tracked link and the
    open pixel (`by="gateway"`), or an image proxy loads the pixel (`by="image-proxy"`)."""

    rate: float
    by: str = "gateway"
    template: str | None = None
    after: timedelta = timedelta(seconds=2)


REACTION_KEYS = ("template", "event", "after", "rate", "properties")
MACHINE_KEYS = ("machine", "by", "template", "after")


def load_reactions(path: Path) -> list[Reaction | MachineTraffic]:
    """The reactions file's entries, or every problem in it as `file:line: message`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulationError(f"{path}: cannot read reactions ({exc})") from None
    data, problems = load_yaml(text, str(path))
    if problems:
        raise SimulationError("\n".join(str(problem) for problem in problems))
    if data is None:
        return []
    if not isinstance(data, LineList):
        raise SimulationError(f"{path}:{getattr(data, 'line', 1)}: expected a list of reactions")
    reactions: list[Reaction | MachineTraffic] = []
    errors: list[str] = []
    for index, item in enumerate(data):
        if not isinstance(item, LineDict):
            errors.append(
                f"{path}:{data.line_of(index)}: reaction {index + 1}: expected a mapping "
                "(template, event, after, rate; or machine)"
            )
            continue
        entry = _Entry(path, index + 1, item, errors)
        parsed = entry.machine() if "machine" in item else entry.reaction()
        if parsed is not None:
            reactions.append(parsed)
    if errors:
        raise SimulationError("\n".join(errors))
    return reactions


@dataclass
class _Entry:
    """One item of a reactions file, read into a `Reaction` or a `MachineTraffic`."""

    file: Path
    number: int
    item: LineDict
    errors: list[str]

    def error(self, key: str | None, message: str) -> None:
        line = self.item.line_of(key) if key else self.item.line
        self.errors.append(f"{self.file}:{line}: reaction {self.number}: {message}")

    def unknown_keys(self, known: Sequence[str]) -> bool:
        unknown = [key for key in self.item if key not in known]
        for key in unknown:
            self.error(
                key,
                f"unknown key '{key}'{did_you_mean(key, (*REACTION_KEYS, *MACHINE_KEYS))} "
                f"(expected {', '.join(known)})",
            )
        return bool(unknown)

    def reaction(self) -> Reaction | None:
        item = self.item
        if self.unknown_keys(REACTION_KEYS):
            return None
        missing = [key for key in ("template", "event", "after", "rate") if key not in item]
        if missing:
            self.error(
                None,
                f"needs template, event, after and rate (missing {', '.join(missing)}); "
                "or machine: the share of sent emails a mail gateway or image proxy fetches",
            )
            return None
        after = parse_duration(item["after"])
        rate = _share(item["rate"])
        properties = item.get("properties") or {}
        if after is None:
            self.error("after", f"invalid duration {item['after']!r}")
        if rate is None:
            self.error("rate", f"rate must be between 0 and 1, not {item['rate']!r}")
        if not isinstance(properties, dict):
            self.error("properties", "properties must be a mapping")
        if after is None or rate is None or not isinstance(properties, dict):
            return None
        return Reaction(str(item["template"]), str(item["event"]), after, rate, dict(properties))

    def machine(self) -> MachineTraffic | None:
        item = self.item
        if self.unknown_keys(MACHINE_KEYS):
            return None
        before = len(self.errors)
        rate = _share(item["machine"])
        if rate is None:
            self.error(
                "machine",
                "machine must be between 0 and 1 (the share of sent emails a machine "
                f"fetches), not {item['machine']!r}",
            )
        by = item.get("by", "gateway")
        if by not in MACHINES:
            self.error(
                "by",
                f"by: expected {' or '.join(MACHINES)}, not {by!r}{did_you_mean(str(by), MACHINES)}",
            )
        after = parse_duration(item["after"]) if "after" in item else MachineTraffic.after
        if after is None:
            self.error("after", f"invalid duration {item['after']!r}")
        template = item.get("template")
        if template is not None and not isinstance(template, str):
            self.error("template", f"template: expected a template name, not {template!r}")
        if len(self.errors) > before or rate is None or after is None:
            return None
        return MachineTraffic(rate, str(by), template, after)


def _share(value: Any) -> float | None:
    """A rate between 0 and 1, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return None
    return float(value)
