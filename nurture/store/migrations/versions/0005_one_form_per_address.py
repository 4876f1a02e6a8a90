"""One form per address: contacts' and suppressions' addresses in their normal form.

Until #13 an address was stored stripped and lower-cased as given, so
``dup@xn--bcher-kva.example`` and ``dup@bücher.example`` were two contacts of
one mailbox. Addresses are now normalised once (`canonical_email`: IDNA
domain in Unicode NFC, local part NFC, lower case). This rewrites the stored
ones: a contact whose normal form is free takes it; one whose normal form
another contact already holds keeps its old spelling and is listed in the
upgrade's log (merge by hand: export, then erase the newer one). Suppression
entries with the address in clear are re-hashed; erased ones (a hash alone)
cannot be, and lookups check the old spelling's hash too.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from nurture.addresses import canonical_email

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, email FROM contacts ORDER BY id")).all()
    taken = {email for _, email in rows}
    clashes = []
    for contact_id, email in rows:
        canonical = canonical_email(email)
        if canonical is None or canonical == email:
            continue
        if canonical in taken:
            clashes.append(contact_id)
            continue
        bind.execute(
            sa.text("UPDATE contacts SET email = :email WHERE id = :id"),
            {"email": canonical, "id": contact_id},
        )
        taken.discard(email)
        taken.add(canonical)
    if clashes:
        log.warning(
            "%d contact(s) share a mailbox with an older contact and keep their old "
            "spelling (ids %s): merge them by hand",
            len(clashes),
            ", ".join(str(i) for i in clashes[:50]),
        )
    entries = bind.execute(
        sa.text("SELECT id, email, email_hash FROM suppressions WHERE email IS NOT NULL")
    ).all()
    hashes = {digest for _, _, digest in entries}
    for entry_id, email, digest in entries:
        canonical = canonical_email(email)
        if canonical is None:
            continue
        new = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
        if new == digest or new in hashes:
            continue
        bind.execute(
            sa.text("UPDATE suppressions SET email = :email, email_hash = :hash WHERE id = :id"),
            {"email": canonical, "hash": new, "id": entry_id},
        )
        hashes.add(new)


def downgrade() -> None:
    """Nothing to undo: the normal forms are valid addresses for the old code too."""
