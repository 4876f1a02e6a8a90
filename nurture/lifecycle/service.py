"""Flow 2 in one object: events in, scores, stages, handoffs, all in the caller's transaction.

`Lifecycle` wires the pieces once: `stages` (the one stage-move path),
`scoring` (events, profiles and `score` steps into the ledger; climbs),
`handoffs` (opening, sales' actions, the SLA), `ingestor` (every door's
events) and `segments` (membership upkeep, when nurture.yaml has segments).
It knows nothing of the engine that runs workflows: what the engine must hear
(a stage entered, events recorded, a contact changed, a lead recycled) reaches
it through the listeners given here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.orm import Session

import nurture.clock as clock
from nurture.definitions import model as m
from nurture.lifecycle.facts import StageMove
from nurture.lifecycle.handoff.actions import Handoffs
from nurture.lifecycle.importer import ImportedBatch
from nurture.lifecycle.ingest import Ingestor
from nurture.lifecycle.listeners import Listener, Listeners
from nurture.lifecycle.scoring import Scoring
from nurture.lifecycle.segments import Segments
from nurture.lifecycle.stages import Stages
from nurture.records import Recorder, discard
from nurture.store.contacts import contacts_by_id
from nurture.store.models import Contact


class Lifecycle:
    """Scores, stages and handoffs for one project, telling `listeners` what changed."""

    def __init__(
        self,
        config: m.ProjectConfig,
        listeners: Sequence[Listener] = (),
        record: Recorder = discard,
    ) -> None:
        self.config = config
        self.listener = Listeners(listeners)
        self.stages = Stages(config, self.listener, record)
        self.scoring = Scoring(config, self.stages, record)
        self.handoffs = Handoffs(config, self.stages, self.scoring, self.listener, record)
        self.ingestor = Ingestor(config, self.scoring, self.stages, self.listener, record)
        #: Segment upkeep; None without segments (nothing then costs anything per event).
        self.segments: Segments | None = None
        if config.segments:
            self.segments = Segments(config, self.stages, record)
            self.listener.prepend(self.segments)

    def contacts_imported(self, session: Session, batch: ImportedBatch) -> None:
        """The import hook (`on_batch`), inside the batch's transaction: the stages the
        rows set go through the one stage-move path, changed contacts are announced
        (workflows that `enroll: {when: ...}` re-test), and profiles are re-scored."""
        now = clock.now()
        moved = {change.contact_id for change in batch.stage_changes}
        contacts = contacts_by_id(session, {*batch.contact_ids, *moved})
        moves = [
            StageMove(
                change.contact_id,
                change.from_stage,
                change.to_stage,
                "import",
                {"source": change.source},
            )
            for change in batch.stage_changes
        ]
        self.stages.apply(session, contacts, moves, now)
        changed = [contacts[i] for i in batch.contact_ids]
        self.listener.after_change(session, changed, now)
        self.scoring.refit(session, changed, now)

    def profile_changed(self, session: Session, contacts: Sequence[Contact], now: datetime) -> None:
        """Fields of these contacts changed (a workflow's `set` step): fit points are
        re-scored (perhaps a climb), then the change is announced."""
        self.scoring.refit(session, contacts, now)
        self.listener.after_change(session, contacts, now)
