"""The step executor: a pure function from an enrollment's state to a decision.

`advance(workflow, state, inputs)` runs the instantaneous steps (branch, goto,
set, score, notify) until the enrollment reaches something that needs time
(a wait, a wait_for, a deferred send) or ends, and returns what should happen
as values: the new state and the effects (emails to send, properties to set,
points to add). It reads no database, no clock and no broker, so the worker,
`simulate`, `explain` and the property tests all run the very same decisions.

Every executed step increments `visit`. A send's claim key is (enrollment,
step, visit): a retried message recomputes the same decision and claims the
same key, while a loop that really sends a step twice gets two keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from nurture.contacts.view import ContactView
from nurture.definitions import model as m
from nurture.definitions.ladder import at_or_beyond
from nurture.delivery.policy import Deferral
from nurture.engine import assignment
from nurture.engine.decisions import AddScore as AddScore
from nurture.engine.decisions import Assign as Assign
from nurture.engine.decisions import Effect as Effect
from nurture.engine.decisions import SendEmail as SendEmail
from nurture.engine.decisions import SendNotification as SendNotification
from nurture.engine.decisions import SetFields as SetFields
from nurture.events import EventView
from nurture.expressions import SEGMENT_FUNCTION, Expression, ExpressionError
from nurture.store.statuses import EnrollmentStatus

#: Safety net: validation rejects loops without a wait, but a decision must end.
MAX_STEPS_PER_ADVANCE = 500


@dataclass(frozen=True)
class EnrollmentState:
    """Where an enrollment is. `step` is the step to execute next (None: the first).

    While the enrollment waits, `step` is the wait or wait_for step itself and
    `waiting_since` / `wait_until` say since when and until when.
    """

    step: str | None = None
    visit: int = 0
    status: EnrollmentStatus = EnrollmentStatus.ACTIVE
    waiting_since: datetime | None = None
    wait_until: datetime | None = None
    exit_reason: str | None = None
    deferred: str | None = None  # why a send waits: "window", "cap", "paused", "previous-email"

    @property
    def ended(self) -> bool:
        return self.status in (EnrollmentStatus.COMPLETED, EnrollmentStatus.EXITED)


@dataclass(frozen=True)
class Trace:
    """One thing that happened during an advance, for simulate and explain."""

    kind: str  # step kind, or "exit", "defer", "event", "timeout"
    step: str | None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """What one advance decided: the new state, the effects to write, and the trace.

    The executor's only output; `Engine.advance` writes it, the executor tests check it as is.
    """

    state: EnrollmentState
    effects: tuple[Effect, ...] = ()
    trace: tuple[Trace, ...] = ()
    #: When to look at this enrollment again; None once it has ended.
    next_run_at: datetime | None = None
    #: The event that satisfied a wait_for, if one did.
    matched_event: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.effects or self.trace)


#: Decides whether an email may leave now: None means yes, a Deferral says
#: "not before then, because" (send window, frequency cap). Pure; the caller
#: binds it to the contact's timezone and recent sends. The int is how many
#: emails this same advance has already sent, which the cap must count too.
SendGate = Callable[[datetime, int], Deferral | None]


def always_open(_now: datetime, _sent: int) -> Deferral | None:
    return None


@dataclass(frozen=True)
class Inputs:
    """Everything a decision depends on, gathered by the caller."""

    contact: ContactView
    now: datetime
    stages: tuple[str, ...]
    prospect_stage: str
    events: Sequence[EventView] = ()  # the contact's events since the current wait began
    timezone: str = "UTC"
    suppressed: str | None = None  # a reason when the contact must get no email
    send_gate: SendGate = always_open
    #: Variant tests decided so far: (workflow, step, test) → the winning variant's name.
    winners: assignment.Winners = field(default_factory=dict)
    #: The segments of nurture.yaml the contact is in now (`in_segment`, wait_for segment).
    segments: frozenset[str] = frozenset()

    def expression_context(
        self, contact: ContactView, event: EventView | None = None
    ) -> dict[str, Any]:
        context: dict[str, Any] = {
            "contact": contact,
            "now": self.now,
            "stage_index": self.stage_index,
            SEGMENT_FUNCTION: self.in_segment,
        }
        if event is not None:
            context["event"] = event
        return context

    def stage_index(self, stage: str) -> int:
        return self.stages.index(stage)

    def in_segment(self, name: str) -> bool:
        return name in self.segments


def exit_reason(workflow: m.Workflow, inputs: Inputs, contact: ContactView) -> str | None:
    """Why this enrollment must end now, if it must: checked before every step."""
    if inputs.suppressed:
        return inputs.suppressed
    if at_or_beyond(contact.get("stage"), inputs.prospect_stage, inputs.stages):
        return "prospect"
    if workflow.exit_when is not None and _test(
        workflow.exit_when, inputs.expression_context(contact)
    ):
        return "exit-condition"
    return None


def _test(expression: Expression, context: Mapping[str, Any]) -> bool:
    """A condition that fails to evaluate counts as false rather than stopping the run."""
    try:
        return expression.test(context)
    except ExpressionError:
        return False


def advance(workflow: m.Workflow, state: EnrollmentState, inputs: Inputs) -> Decision:
    """Run the enrollment as far as it can go at `inputs.now`."""
    if state.ended:
        return Decision(state)
    run = _Run(workflow, state, inputs)
    return run.go()


class _Run:
    """The mutable scratchpad of one advance; only the returned Decision escapes."""

    def __init__(self, workflow: m.Workflow, state: EnrollmentState, inputs: Inputs) -> None:
        self.workflow = workflow
        self.state = state
        self.inputs = inputs
        self.now = inputs.now
        self.contact = inputs.contact
        self.effects: list[Effect] = []
        self.trace: list[Trace] = []
        self.matched_event: str | None = None

    # -- the loop --------------------------------------------------------------

    def go(self) -> Decision:
        state = self.state
        if state.step is None:
            state = replace(state, step=self.workflow.steps[0].id, status=EnrollmentStatus.ACTIVE)
            if self.workflow.holdout:
                self._assign_holdout()
        for _ in range(MAX_STEPS_PER_ADVANCE):
            reason = exit_reason(self.workflow, self.inputs, self.contact)
            if reason is not None:
                return self._end(state, EnrollmentStatus.EXITED, reason)
            assert state.step is not None
            step = self.workflow.step(state.step)
            outcome = self._execute(step, state)
            if isinstance(outcome, Decision):
                return outcome
            state = outcome
            if state.ended:
                return self._decision(state, None)
            if state.step is None:
                return self._end(state, EnrollmentStatus.COMPLETED, "completed")
        return self._end(state, EnrollmentStatus.EXITED, "step-limit")

    def _decision(self, state: EnrollmentState, next_run_at: datetime | None) -> Decision:
        return Decision(
            state=state,
            effects=tuple(self.effects),
            trace=tuple(self.trace),
            next_run_at=next_run_at,
            matched_event=self.matched_event,
        )

    def _end(self, state: EnrollmentState, status: EnrollmentStatus, reason: str) -> Decision:
        self.trace.append(Trace("exit", state.step, {"reason": reason}))
        ended = replace(
            state, status=status, exit_reason=reason, waiting_since=None, wait_until=None
        )
        return self._decision(ended, None)

    def _goto(self, state: EnrollmentState, target: str | None) -> EnrollmentState:
        """Move the pointer; None means "fell off the end": the workflow completes."""
        return replace(
            state,
            step=target,
            status=EnrollmentStatus.ACTIVE,
            waiting_since=None,
            wait_until=None,
            deferred=None,
        )

    def _next(self, step: m.Step) -> str | None:
        following = self.workflow.next_step(step)
        return following.id if following else None

    def _visit(self, state: EnrollmentState) -> EnrollmentState:
        return replace(state, visit=state.visit + 1)

    # -- steps -----------------------------------------------------------------

    def _execute(self, step: m.Step, state: EnrollmentState) -> EnrollmentState | Decision:
        if isinstance(step, m.SendStep):
            return self._send(step, state)
        if isinstance(step, m.WaitStep):
            return self._wait(step, state)
        if isinstance(step, m.WaitForStep):
            return self._wait_for(step, state)
        state = self._visit(state)
        if isinstance(step, m.BranchStep):
            return self._branch(step, state)
        if isinstance(step, m.GotoStep):
            self.trace.append(Trace("goto", step.id, {"to": step.target}))
            return self._goto(state, step.target)
        if isinstance(step, m.SplitStep):
            arm = assignment.arm_for(step, self.workflow.name, self._contact_key)
            self.effects.append(Assign(step.id, arm.goto, self.contact.get("stage")))
            self.trace.append(Trace("split", step.id, {"arm": arm.goto}))
            return self._goto(state, arm.goto)
        if isinstance(step, m.SetStep):
            self.effects.append(
                SetFields(
                    step.id, state.visit, dict(step.properties), step.add_tags, step.remove_tags
                )
            )
            self.contact = _with_fields(self.contact, step)
            self.trace.append(Trace("set", step.id, {"properties": dict(step.properties)}))
            return self._goto(state, self._next(step))
        if isinstance(step, m.ScoreStep):
            self.effects.append(AddScore(step.id, state.visit, step.points, step.reason))
            score = float(self.contact.get("score") or 0) + step.points
            self.contact = _with(self.contact, score=score)
            self.trace.append(Trace("score", step.id, {"points": step.points, "score": score}))
            return self._goto(state, self._next(step))
        if isinstance(step, m.NotifyStep):
            self.effects.append(SendNotification(step.id, state.visit, step.notify))
            self.trace.append(Trace("notify", step.id, {"kind": step.notify.kind}))
            return self._goto(state, self._next(step))
        assert isinstance(step, m.ExitStep), step
        # An exit step is the workflow finishing as written ("completed", whatever
        # its reason); "exited" is reserved for being forced out (prospect,
        # suppressed, exit condition), which also cancels emails not yet sent.
        return self._end(state, EnrollmentStatus.COMPLETED, step.reason)

    @property
    def _contact_key(self) -> str:
        """What experiments draw by: the contact's id (its email where a view has none)."""
        return str(self.contact.get("id") or self.contact.get("email") or "")

    def _assign_holdout(self) -> None:
        held = assignment.held_out(self.workflow, self._contact_key)
        arm = assignment.HELD_OUT if held else assignment.TREATED
        self.effects.append(Assign(assignment.HOLDOUT, arm, self.contact.get("stage")))
        if held:
            self.trace.append(Trace("holdout", None, {"share": self.workflow.holdout}))

    def _send(self, step: m.SendStep, state: EnrollmentState) -> EnrollmentState | Decision:
        if assignment.held_out(self.workflow, self._contact_key):
            # Kept in the workflow, to compare with those emailed: the email is not sent.
            self.trace.append(Trace("withheld", step.id, {"reason": "holdout"}))
            return self._goto(self._visit(state), self._next(step))
        variant = (
            assignment.variant_for(step, self.workflow.name, self._contact_key, self.inputs.winners)
            if step.variants
            else None
        )
        template = variant.template if variant else step.template
        chosen = {"variant": variant.name} if variant else {}
        sent = sum(isinstance(effect, SendEmail) for effect in self.effects)
        deferral = self.inputs.send_gate(self.now, sent)
        if deferral is not None and deferral.until > self.now:
            self.trace.append(
                Trace(
                    "defer",
                    step.id,
                    {
                        "reason": deferral.reason,
                        "until": deferral.until.isoformat(),
                        "template": template,
                        **chosen,
                    },
                )
            )
            waiting = replace(
                state,
                status=EnrollmentStatus.WAITING,
                waiting_since=None,
                wait_until=deferral.until,
                deferred=deferral.reason,
            )
            return self._decision(waiting, deferral.until)
        state = replace(self._visit(state), deferred=None)
        self.effects.append(
            SendEmail(step.id, state.visit, template, variant.name if variant else None)
        )
        self.trace.append(Trace("send", step.id, {"template": template, **chosen}))
        return self._goto(state, self._next(step))

    def _wait(self, step: m.WaitStep, state: EnrollmentState) -> EnrollmentState | Decision:
        if state.waiting_since is None:
            until = wait_until(step, self.now, self.inputs.timezone)
            state = replace(
                state, status=EnrollmentStatus.WAITING, waiting_since=self.now, wait_until=until
            )
            self.trace.append(Trace("wait", step.id, {"until": until.isoformat()}))
        assert state.wait_until is not None
        if self.now < state.wait_until:
            return self._decision(state, state.wait_until)
        return self._goto(self._visit(state), self._next(step))

    def _wait_for(self, step: m.WaitForStep, state: EnrollmentState) -> EnrollmentState | Decision:
        if state.waiting_since is None:
            until = self.now + step.timeout
            state = replace(
                state, status=EnrollmentStatus.WAITING, waiting_since=self.now, wait_until=until
            )
            self.trace.append(
                Trace("wait_for", step.id, {**_awaited(step), "until": until.isoformat()})
            )
        assert state.waiting_since is not None and state.wait_until is not None
        if (
            step.segment is not None
            and step.segment in self.inputs.segments
            and self.now <= state.wait_until
        ):
            # In the segment (perhaps before the wait began): the wait is over.
            self.trace.append(Trace("event", step.id, {"segment": step.segment}))
            return self._goto(self._visit(state), step.on_event or self._next(step))
        event = self._matching_event(step, state.waiting_since, min(self.now, state.wait_until))
        if event is not None:
            self.matched_event = event.id
            self.trace.append(Trace("event", step.id, {"event": event.type, "id": event.id}))
            return self._goto(self._visit(state), step.on_event or self._next(step))
        if self.now < state.wait_until:
            return self._decision(state, state.wait_until)
        self.trace.append(Trace("timeout", step.id, _awaited(step)))
        return self._goto(self._visit(state), step.on_timeout or self._next(step))

    def _matching_event(
        self, step: m.WaitForStep, since: datetime, until: datetime
    ) -> EventView | None:
        for event in sorted(self.inputs.events, key=lambda e: e.at):
            if event.type != step.event or not (since <= event.at <= until):
                continue
            if not event.counts(step.count):
                continue
            if step.segment is not None and event.properties.get("segment") != step.segment:
                continue
            if step.match is None or _test(
                step.match, self.inputs.expression_context(self.contact, event)
            ):
                return event
        return None

    def _branch(self, step: m.BranchStep, state: EnrollmentState) -> EnrollmentState:
        context = self.inputs.expression_context(self.contact)
        for number, case in enumerate(step.cases):
            if case.when is None or _test(case.when, context):
                self.trace.append(Trace("branch", step.id, {"case": number, "to": case.goto}))
                return self._goto(state, case.goto)
        self.trace.append(Trace("branch", step.id, {"case": None, "to": self._next(step)}))
        return self._goto(state, self._next(step))


def _awaited(step: m.WaitForStep) -> dict[str, str]:
    """What a wait_for waits for, in its trace: an event type, or a segment."""
    return {"segment": step.segment} if step.segment is not None else {"event": step.event}


def _with(contact: ContactView, **changes: Any) -> ContactView:
    fields = {**contact._fields, **changes}
    return ContactView(fields, contact._properties, contact._declared)


def _with_fields(contact: ContactView, step: m.SetStep) -> ContactView:
    field_changes = {k: v for k, v in step.properties.items() if k in contact._fields}
    property_changes = {k: v for k, v in step.properties.items() if k not in contact._fields}
    tags = [t for t in (contact.get("tags") or []) if t not in step.remove_tags]
    tags += [t for t in step.add_tags if t not in tags]
    fields = {**contact._fields, **field_changes, "tags": tags}
    return ContactView(fields, {**contact._properties, **property_changes}, contact._declared)


def wait_until(step: m.WaitStep, now: datetime, timezone: str) -> datetime:
    """The end of a wait: a duration, or the next given time/weekday in the contact's zone."""
    if step.duration is not None:
        return now + step.duration
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    at = step.until_time
    candidate_day = local.date()
    for offset in range(0, 8):
        day = candidate_day + timedelta(days=offset)
        if step.until_weekday is not None and day.weekday() != step.until_weekday:
            continue
        moment_time = at if at is not None else local.time().replace(microsecond=0)
        if at is None and offset == 0:
            continue  # "until monday" on a Monday means next Monday
        candidate = datetime.combine(day, moment_time, tzinfo=zone)
        if candidate > local:
            return candidate.astimezone(now.tzinfo)
    raise AssertionError("a weekday recurs within 8 days")  # pragma: no cover
