"""The immutable model a nurture project is parsed into.

Everything downstream (executor, scoring, handoff, simulate) reads these frozen
values, never YAML. Steps keep their file and line so a runtime message can
point back at the definition that caused it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, time, timedelta
from pathlib import Path
from typing import Any, Literal

from nurture.expressions import Expression

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WEEKDAY_NAMES: dict[str, int] = {
    **{name: i for i, name in enumerate(WEEKDAYS)},
    **{
        name: i
        for i, name in enumerate(
            ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        )
    },
}


@dataclass(frozen=True)
class Located:
    """Where a definition came from, for messages at run time."""

    file: str
    line: int | None


# --- nurture.yaml -----------------------------------------------------------


@dataclass(frozen=True)
class ScoringRule(Located):
    """One `scoring.rules` entry: the points an event earns when `when` holds, within its caps.

    `key` names the rule in the score ledger, so a replayed event is scored once per rule.
    """

    key: str  # stable id for ledger rows: "rule:<n>:<event>"
    event: str
    points: float
    when: Expression | None = None
    max_per_day: int | None = None
    max_total: int | None = None
    #: "human" (default): only a person's signals earn the points; "all": machines' too.
    count: str = "human"


@dataclass(frozen=True)
class FitRule(Located):
    """One `scoring.fit` entry: profile points, re-tested whenever the contact's data changes."""

    key: str
    when: Expression
    points: float


@dataclass(frozen=True)
class Scoring:
    """The `scoring:` section: event and fit rules, decay, thresholds that move contacts up."""

    rules: tuple[ScoringRule, ...] = ()
    fit: tuple[FitRule, ...] = ()
    half_life: timedelta | None = None
    thresholds: tuple[tuple[str, float], ...] = ()  # (stage, score), ladder order


@dataclass(frozen=True)
class AssignRule(Located):
    """One `handoff.assign.rules` entry: the owner of a new handoff when `when` holds."""

    owner: str
    when: Expression | None = None


@dataclass(frozen=True)
class Assign:
    """How a handoff gets an owner when the contact has none.

    The first of `rules` that holds, else the next turn of `round_robin`.
    """

    round_robin: tuple[str, ...] = ()
    rules: tuple[AssignRule, ...] = ()


@dataclass(frozen=True)
class Notify(Located):
    """A message to sales or a CRM: a `handoff.notify` entry or the body of a `notify:` step."""

    kind: Literal["webhook", "email"]
    target: str  # a URL, "owner", or an address
    template: str | None = None


@dataclass(frozen=True)
class Sla:
    """Past `accept_within` unaccepted: a reminder to the owner; `escalate_after`
    later still (default: half of accept_within), escalation to `escalate_to`."""

    accept_within: timedelta | None = None
    escalate_after: timedelta | None = None
    escalate_to: str | None = None

    @property
    def escalation_delay(self) -> timedelta | None:
        if self.escalate_after is not None:
            return self.escalate_after
        return self.accept_within / 2 if self.accept_within else None


@dataclass(frozen=True)
class OnAccept:
    """`handoff.on_accept` (extension): where sales accepting a lead moves its contact."""

    stage: str | None = None  # None: the contact stays on `handoff.at`


@dataclass(frozen=True)
class OnReject:
    """`handoff.on_reject`: how a lead sales sent back is recycled (stage, score, workflow).

    `line` is where `workflow:` was written, for the check that the workflow exists.
    """

    stage: str | None = None
    score: Literal["keep", "halve", "reset"] = "keep"
    workflow: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class Handoff(Located):
    """The `handoff:` section: when a contact goes to sales, and what follows.

    Who owns the handoff, who is told, its SLA, and what accepting or rejecting it does.
    """

    at: str
    assign: Assign = field(default_factory=Assign)
    notify: tuple[Notify, ...] = ()
    sla: Sla = field(default_factory=Sla)
    on_accept: OnAccept = field(default_factory=OnAccept)
    on_reject: OnReject = field(default_factory=OnReject)


@dataclass(frozen=True)
class SendWindow:
    """`sending.window`: the weekdays and hours email may leave, in the contact's timezone."""

    days: frozenset[int]  # 0 = Monday
    start: time
    end: time


@dataclass(frozen=True)
class FrequencyCap:
    """`sending.frequency_cap`: at most `max` emails to one contact in any span of `per`."""

    max: int
    per: timedelta


#: What `Sending.return_path` holds where the send id goes.
SEND_ID_PLACEHOLDER = "{send_id}"


@dataclass(frozen=True)
class Warmup:
    """`sending.warmup`: a new sending domain's daily quota, day by day from `since`
    (`daily[0]` on that day, `daily[1]` the next…); after the last, no warm-up quota."""

    since: date
    daily: tuple[int, ...]

    def quota(self, today: date) -> int | None:
        day = (today - self.since).days
        if day < 0:
            return self.daily[0]
        return self.daily[day] if day < len(self.daily) else None


@dataclass(frozen=True)
class Pacing:
    """How fast the relay may be fed: `sending.rate` (emails per second, minute, hour,
    day, over all workers), `sending.connections` (per worker process), `sending.warmup`."""

    per_second: int | None = None
    per_minute: int | None = None
    per_hour: int | None = None
    per_day: int | None = None
    connections: int = 10
    warmup: Warmup | None = None

    @property
    def limited(self) -> bool:
        rates = (self.per_second, self.per_minute, self.per_hour, self.per_day)
        return self.warmup is not None or any(rate is not None for rate in rates)


@dataclass(frozen=True)
class Sending:
    """The `sending:` section: the sender, and the rules every email obeys before it may leave."""

    from_address: str = "nurture <nurture@localhost>"
    reply_to: str | None = None
    window: SendWindow | None = None
    default_timezone: str = "UTC"
    frequency_cap: FrequencyCap | None = None
    #: True: a contact whose consent is `unknown` (no explicit lawful basis) is
    #: not emailed. False: unknown counts as B2B legitimate interest.
    require_consent: bool = False
    #: Soft bounces in a row (no delivery or engagement between) that suppress.
    soft_bounce_limit: int = 3
    #: The mailto of List-Unsubscribe: None means unsubscribe@<from domain>;
    #: "" means no mailto (the HTTPS link only).
    unsubscribe_mailto: str | None = None
    pacing: Pacing = field(default_factory=Pacing)
    #: The envelope sender (SMTP MAIL FROM, where bounces go) with ``{send_id}``
    #: in its local part (VERP): ``bounces+{send_id}@example.com``; None: the From address.
    return_path: str | None = None

    def return_path_for(self, send_id: str) -> str | None:
        """The envelope sender of one send, or None for the From address."""
        if self.return_path is None:
            return None
        return self.return_path.replace(SEND_ID_PLACEHOLDER, send_id)


@dataclass(frozen=True)
class Tracking:
    """The `tracking:` section: which opens and clicks are a person's, and the website script.

    The defaults are what mail-security gateways and image proxies do in the
    field: they fetch every link within seconds of delivery, several links in
    the same second.
    """

    #: An open or click this soon after the email left is a scanner's, not a reader's.
    machine_within: timedelta = timedelta(seconds=10)
    #: Several links of one email clicked within this: a machine following them all.
    burst_within: timedelta = timedelta(seconds=1)
    #: The same link of the same email clicked again (or the email opened again)
    #: within this is a repeat: it neither scores nor ends a `wait_for` again.
    repeat_within: timedelta = timedelta(days=30)
    #: Origins (``https://www.example.com``) allowed to load the website script.
    sites: tuple[str, ...] = ()
    #: How far back an anonymous browser's visits are attached when it becomes known.
    visitor_window: timedelta = timedelta(days=30)


@dataclass(frozen=True)
class OutboundWebhook(Located):
    """A CRM endpoint told about stage changes and handoffs (signed JSON POSTs)."""

    url: str
    events: tuple[str, ...]


#: How a segment compares its count of events with its number (`count: ">= 3"`).
COMPARISONS: dict[str, Callable[[int, int], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "==": operator.eq,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class SegmentEvents(Located):
    """A segment's `events:`: how many events of `type` (filtered by `match`) the contact
    made within the last `within` (None: ever), compared with `number` by `comparison`."""

    type: str
    comparison: str = ">="
    number: int = 1
    match: Expression | None = None
    within: timedelta | None = None
    #: "human" (default): a machine's opens and clicks are not counted; "all": they are.
    traffic: str = "human"

    def holds(self, count: int) -> bool:
        return COMPARISONS[self.comparison](count, self.number)

    @property
    def count_text(self) -> str:
        return f"{self.comparison} {self.number}"


@dataclass(frozen=True)
class Segment(Located):
    """One entry of `segments:` in nurture.yaml: contacts for whom `when` holds and whose
    events satisfy `events` (either may be left out, not both).

    Membership is kept current as events arrive, as contacts change and as
    counted events leave the `within` window (`nurture.lifecycle.segments`).
    """

    name: str
    when: Expression | None = None
    events: SegmentEvents | None = None


@dataclass(frozen=True)
class ProjectConfig:
    """A parsed `nurture.yaml`: the stage ladder and the rules every workflow shares."""

    file: str
    stages: tuple[str, ...]
    prospect_stage: str
    properties: dict[str, str] = field(default_factory=dict)
    scoring: Scoring = field(default_factory=Scoring)
    handoff: Handoff | None = None
    sending: Sending = field(default_factory=Sending)
    webhooks: tuple[OutboundWebhook, ...] = ()
    tracking: Tracking = field(default_factory=Tracking)
    #: `segments:` by name, in file order.
    segments: dict[str, Segment] = field(default_factory=dict)

    def stage_index(self, stage: str) -> int:
        return self.stages.index(stage)


# --- workflows --------------------------------------------------------------


@dataclass(frozen=True)
class Step(Located):
    """What every workflow step has: its id, its position in the file, whether the id was written.

    The executor dispatches on the subclass; `kind` is its YAML key (`send`, `wait`, ...).
    """

    id: str
    index: int
    explicit_id: bool

    @property
    def kind(self) -> str:
        return _STEP_KIND[type(self)]


@dataclass(frozen=True)
class Variant(Located):
    """One email of a `send` step's A/B test: its name, template and share of contacts."""

    name: str
    template: str
    weight: float


#: Winner metrics, and whether less is better.
WINNER_METRICS: dict[str, bool] = {
    "human_opens": False,
    "human_clicks": False,
    "unsubscribes": True,
    "reached_stage": False,
}


@dataclass(frozen=True)
class Winner(Located):
    """A variant test's `winner:`: the metric that picks the variant everyone gets after.

    Decided once every variant has `min_sample` sends and `after` has passed since the
    first send; `stage` and `within` belong to the `reached_stage` metric.
    """

    metric: str
    after: timedelta
    min_sample: int
    stage: str | None = None
    within: timedelta | None = None

    @property
    def lower_is_better(self) -> bool:
        return WINNER_METRICS[self.metric]


@dataclass(frozen=True)
class SendStep(Step):
    """One `send:` step: the template it sends, or its variants (an A/B test).

    With variants, `template` is the first variant's (what tools show for the step).
    """

    template: str
    variants: tuple[Variant, ...] = ()
    winner: Winner | None = None

    @property
    def templates(self) -> tuple[str, ...]:
        return tuple(v.template for v in self.variants) or (self.template,)

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class WaitStep(Step):
    """One `wait:` step: a duration, or until a time and/or weekday in the contact's timezone."""

    duration: timedelta | None = None
    until_time: time | None = None
    until_weekday: int | None = None


@dataclass(frozen=True)
class WaitForStep(Step):
    """One `wait_for:` step: pauses until a matching event or `timeout`, each with its own exit."""

    event: str
    timeout: timedelta
    match: Expression | None = None
    on_event: str | None = None  # None: the next step
    on_timeout: str | None = None
    #: "human" (default): a machine's open or click does not end the wait; "all": it does.
    count: str = "human"
    #: `wait_for: {segment: NAME}`: the wait ends when the contact is in the segment
    #: (`event` is then ``segment.entered``).
    segment: str | None = None


@dataclass(frozen=True)
class BranchCase(Located):
    """One case of a `branch:` step: where to go when `when` holds; no `when` means otherwise."""

    goto: str
    when: Expression | None = None


@dataclass(frozen=True)
class BranchStep(Step):
    """One `branch:` step: the first case that holds picks the step; if none, the next one."""

    cases: tuple[BranchCase, ...]


@dataclass(frozen=True)
class SplitArm(Located):
    """One arm of a `split:` step: the step its share of contacts goes to."""

    goto: str
    weight: float


@dataclass(frozen=True)
class SplitStep(Step):
    """One `split:` step: each contact goes down one arm, drawn by weight, always the same."""

    arms: tuple[SplitArm, ...]


@dataclass(frozen=True)
class GotoStep(Step):
    """One `goto:` step: an unconditional jump to the step `target`."""

    target: str


@dataclass(frozen=True)
class SetStep(Step):
    """One `set:` step: fields and properties to write on the contact, tags to change."""

    properties: dict[str, Any] = field(default_factory=dict)
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScoreStep(Step):
    """One `score:` step: points added to the contact's score, as a ledger row."""

    points: float
    reason: str | None = None


@dataclass(frozen=True)
class NotifyStep(Step):
    """One `notify:` step: a webhook or an email, queued once per visit."""

    notify: Notify


@dataclass(frozen=True)
class ExitStep(Step):
    """One `exit` step: the workflow finishes as written (status completed), `reason` recorded."""

    reason: str = "completed"


_STEP_KIND: dict[type[Step], str] = {
    SendStep: "send",
    WaitStep: "wait",
    WaitForStep: "wait_for",
    BranchStep: "branch",
    SplitStep: "split",
    GotoStep: "goto",
    SetStep: "set",
    ScoreStep: "score",
    NotifyStep: "notify",
    ExitStep: "exit",
}
STEP_KINDS: tuple[str, ...] = tuple(_STEP_KIND.values())


@dataclass(frozen=True)
class Enroll(Located):
    """A workflow's `enroll:` trigger: exactly one of `stage`, `event`, `when` or `segment`.

    Entering the stage, the event (filtered by `match`), `when` holding as the contact
    changes, or entering the segment.
    """

    stage: str | None = None
    event: str | None = None
    when: Expression | None = None
    match: Expression | None = None  # with `event`: a filter on it
    segment: str | None = None


@dataclass(frozen=True)
class Reenroll:
    """A workflow's `reenroll:` rule: whether a contact who left it may enter again, and when."""

    mode: Literal["never", "always", "after"] = "never"
    after: timedelta | None = None


@dataclass(frozen=True)
class Workflow(Located):
    """One parsed workflow file: trigger, steps and exit condition.

    `content_hash` and `source` identify and keep the version an enrollment runs on.
    """

    name: str
    enroll: Enroll
    steps: tuple[Step, ...]
    description: str = ""
    reenroll: Reenroll = field(default_factory=Reenroll)
    exit_when: Expression | None = None
    #: `holdout:`: the share (0–1) of enrolled contacts kept in the workflow unemailed.
    holdout: float = 0.0
    content_hash: str = ""
    source: str = field(default="", repr=False, compare=False)

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def next_step(self, step: Step) -> Step | None:
        following = step.index + 1
        return self.steps[following] if following < len(self.steps) else None

    @property
    def step_ids(self) -> tuple[str, ...]:
        return tuple(step.id for step in self.steps)


@dataclass(frozen=True)
class ProjectFiles:
    """What a project directory holds, before anything is parsed."""

    root: Path
    config_file: Path
    workflow_files: tuple[Path, ...]
    templates_dir: Path
