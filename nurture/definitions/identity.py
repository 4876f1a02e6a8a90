"""Which step of one version of a workflow is which step of another.

An enrollment stores the id of its step, and ids are read from the source of
the version it runs (`workflow_versions.source`), which never changes: so a
stored id keeps meaning what it meant, however the file is edited later. What
an edit can change is how the *next* version names a step: an id written in
the file (`id: guide`) is the author's name for it, but one nurture derives
(`wait-2`: the kind and the position) moves when a step is inserted or
removed before it.

So a step's identity across two versions is not its id alone. `match_steps`
pairs the steps of two versions as a diff pairs lines:

- the same id on both sides, written (`id:`) on either, is the same step,
  whatever its content: the author named it;
- an id written on one side only, without that id on the other, is a step of
  its own (renaming `id: welcome` to `id: hello` makes a new step);
- the other steps are compared by content (`signature`) and order, with
  `difflib.SequenceMatcher`: unchanged runs pair up, and in a run that was
  rewritten, steps of the same kind pair in order (a `wait: 2d` become
  `wait: 3d` is the same wait, changed).

`nurture plan` and `apply --migrate` move an enrollment to the step its own
step is paired with (`nurture.tools.deploy.destination`): inserting a
`score` step before a `wait` leaves the contacts waiting there waiting, on
the same wait, now called `wait-3`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from nurture.definitions import model as m
from nurture.expressions import Expression

#: What says where a definition sits, not what it means.
_PLACE = frozenset({"file", "line", "index", "explicit_id", "id"})


def signature(value: Any) -> Any:
    """A definition's meaning, without where it sits in its file (line, position) or its id."""
    if isinstance(value, Expression):
        return value.source
    if isinstance(value, m.Located):
        return (
            type(value).__name__,
            tuple(
                (f.name, signature(getattr(value, f.name)))
                for f in dataclasses.fields(value)
                if f.name not in _PLACE
            ),
        )
    if isinstance(value, tuple | list):
        return tuple(signature(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, repr(signature(v))) for k, v in value.items()))
    return value


@dataclass(frozen=True)
class StepMatch:
    """The steps of an old and a new version of one workflow, paired."""

    pairs: dict[str, str]  # old step id → the id of the same step in the new version
    added: tuple[str, ...]  # new steps that pair with none (new order)
    removed: tuple[str, ...]  # old steps that pair with none (old order)
    changed: tuple[str, ...]  # new ids of paired steps whose definition changed
    renamed: tuple[tuple[str, str], ...]  # (old id, new id) of paired steps whose id differs


def match_steps(old: m.Workflow, new: m.Workflow) -> StepMatch:
    """Pair `old`'s steps with `new`'s: by written id, else by content and order."""
    old_ids, new_ids = set(old.step_ids), set(new.step_ids)
    old_written = {s.id for s in old.steps if s.explicit_id}
    new_written = {s.id for s in new.steps if s.explicit_id}
    named = (old_ids & new_ids) & (old_written | new_written)

    def token(step: m.Step) -> str:
        if step.id in named:
            return repr(("id", step.id))
        if step.explicit_id:
            return repr(("only", step.id))  # pairs with nothing
        return repr(("step", signature(step)))

    a, b = [token(s) for s in old.steps], [token(s) for s in new.steps]
    pairs: dict[str, str] = {step_id: step_id for step_id in named}
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for offset in range(i2 - i1):
                pairs.setdefault(old.steps[i1 + offset].id, new.steps[j1 + offset].id)
        elif tag == "replace":
            _pair_by_kind(old.steps[i1:i2], new.steps[j1:j2], named, pairs)
    taken = set(pairs.values())
    new_by_id = {s.id: s for s in new.steps}
    return StepMatch(
        pairs={s.id: pairs[s.id] for s in old.steps if s.id in pairs},
        added=tuple(i for i in new.step_ids if i not in taken),
        removed=tuple(i for i in old.step_ids if i not in pairs),
        changed=tuple(
            pairs[s.id]
            for s in old.steps
            if s.id in pairs and signature(s) != signature(new_by_id[pairs[s.id]])
        ),
        renamed=tuple((s.id, pairs[s.id]) for s in old.steps if pairs.get(s.id, s.id) != s.id),
    )


def _pair_by_kind(
    olds: tuple[m.Step, ...], news: tuple[m.Step, ...], named: set[str], pairs: dict[str, str]
) -> None:
    """In a rewritten run, unnamed steps of the same kind pair in order (the same wait, edited)."""
    free = [s for s in news if not s.explicit_id and s.id not in named]
    start = 0
    for step in olds:
        if step.explicit_id or step.id in named:
            continue
        for position in range(start, len(free)):
            if free[position].kind == step.kind:
                pairs[step.id] = free[position].id
                start = position + 1
                break
