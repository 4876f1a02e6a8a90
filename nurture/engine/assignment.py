"""Who gets what in an experiment: a variant, a split's arm, the holdout.

Each draw is a hash of the contact and the experiment (the workflow and the step,
or the workflow's holdout), not a random number: the same contact always lands
in the same variant, arm or group, in production, on a re-run, in `simulate`
and in `explain`, with nothing stored to remember it by. Different experiments
hash with different names, so their draws are independent of each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from nurture.definitions import model as m

#: The experiment name of a workflow's holdout: no step id starts with "@".
HOLDOUT = "@holdout"
#: A contact's group in a workflow with a holdout: kept out of its emails, or not.
HELD_OUT, TREATED = "holdout", "treated"


def draw(contact: str, experiment: str) -> float:
    """A number in [0, 1), the same for this contact and experiment on every call."""
    digest = hashlib.sha256(f"{experiment}\x00{contact}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick(contact: str, experiment: str, weights: Sequence[float]) -> int:
    """The index drawn for this contact, each with a chance proportional to its weight."""
    point = draw(contact, experiment) * sum(weights)
    total = 0.0
    for index, weight in enumerate(weights):
        total += weight
        if point < total:
            return index
    return len(weights) - 1


def experiment_name(workflow: str, step: str) -> str:
    return f"{workflow}/{step}"


#: A decided variant test: (workflow, step id, `test_of` the step) → the winning variant.
Winners = Mapping[tuple[str, str, str], str]


def test_of(step: m.SendStep) -> str:
    """What a variant test is: its variants' names and templates. Another template or
    another variant makes another test, whose winner is decided afresh."""
    spec = "\n".join(sorted(f"{v.name}={v.template}" for v in step.variants))
    return hashlib.sha256(spec.encode()).hexdigest()[:16]


def variant_for(step: m.SendStep, workflow: str, contact: str, winners: Winners) -> m.Variant:
    """The variant this contact gets: the winner once decided, else its weighted draw."""
    decided = winners.get((workflow, step.id, test_of(step)))
    chosen = step.variant(decided) if decided is not None else None
    if chosen is not None:
        return chosen
    index = pick(contact, experiment_name(workflow, step.id), [v.weight for v in step.variants])
    return step.variants[index]


def arm_for(step: m.SplitStep, workflow: str, contact: str) -> m.SplitArm:
    index = pick(contact, experiment_name(workflow, step.id), [a.weight for a in step.arms])
    return step.arms[index]


def held_out(workflow: m.Workflow, contact: str) -> bool:
    """Whether this contact is in the workflow's holdout (kept in it, never emailed by it)."""
    return workflow.holdout > 0 and draw(contact, experiment_name(workflow.name, HOLDOUT)) < (
        workflow.holdout
    )
