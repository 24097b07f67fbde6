"""What online migration asks of a source engine: change capture (``golive.migrate.online``).

The lifecycle, per run::

    check      what capture needs and the source lacks (settings, privileges, tables without a key)
    begin      start capturing at a moment the copy's snapshot is consistent with; yields the snapshot the copy's
               readers use, held until the copy is done (capture goes on after it)
    changes    the changed rows after a position, in commit order (keys only: the catch-up re-reads the rows)
    head       the source's position now (a catch-up without a time limit goes that far, then stops)
    fence      every later write to the source fails loudly, with golive's message
    end        remove everything golive added (slot, triggers, change table, fence)

A crash anywhere: the same command finds the state in the target's bookkeeping and goes on from the applied
position (nothing is applied twice: a change applies the row as the source has it now, inside the transaction that
records the position). ``leftovers`` names what any run left behind that keeps costing (a slot holding WAL).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from golive.dialects.base.concern import Concern

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from golive.model.capture import CaptureState, ChangeBatch
    from golive.model.plan import MigrationPlan
    from golive.urls import DatabaseURL


class Capture(Concern):
    """Change capture of this engine, for moving it while the app keeps writing."""

    #: how this engine's capture works, for the plan and the README (one line)
    method: str = ""
    #: how a fenced source refuses writes (one line)
    fence_method: str = ""

    def check(self, url: "DatabaseURL", plan: "MigrationPlan", *, keyless: bool = False) -> list[str]:
        """What change capture needs and this source lacks: one line each, naming the fix (empty: ready).

        Args:
            keyless: the user accepts tables without a primary key (full-row identity); else each is refused by
                name.
        """
        raise NotImplementedError

    def begin(self, url: "DatabaseURL", plan: "MigrationPlan", *, workers: int
              ) -> "AbstractContextManager[tuple[str | None, CaptureState]]":
        """Start capturing at a moment the copy's snapshot is consistent with: no change at the boundary is lost
        (a change before it is in the copy, one after it is captured; one in both applies twice, harmlessly).

        Yields ``(snapshot for the chunk readers or None, state)``; the snapshot is held until the block ends.
        """
        raise NotImplementedError

    def changes(self, url: "DatabaseURL", state: "CaptureState", after: str, *, limit: int) -> "ChangeBatch":
        """The changed rows after ``after`` (at most ``limit``), in commit order.

        Raises:
            SchemaChanged: a copied table's definition changed (DDL), named with what changed.
        """
        raise NotImplementedError

    def head(self, url: "DatabaseURL", state: "CaptureState") -> str | None:
        """The source's position now (its latest write): a catch-up that reached it is caught up with the moment it
        asked, however fast the app goes on writing. None: this engine cannot say (the catch-up then ends when a
        batch comes back empty)."""
        return None

    def position_key(self, position: str):
        """A position as something that sorts in the source's commit order (positions compare within one engine)."""
        raise NotImplementedError

    def fence(self, url: "DatabaseURL", state: "CaptureState") -> None:
        """Make every later write to the source fail loudly with golive's message (the cut-over's first step)."""
        raise NotImplementedError

    def unfence(self, url: "DatabaseURL", state: "CaptureState") -> None:
        """Let the source take writes again (an aborted cut-over)."""
        raise NotImplementedError

    def end(self, url: "DatabaseURL", state: "CaptureState", *, keep_fence: bool = False) -> list[str]:
        """Remove what golive added to the source (slot, triggers, change table; the fence unless ``keep_fence``);
        returns what was removed, named."""
        raise NotImplementedError

    def leftovers(self, url: "DatabaseURL") -> list[str]:
        """Capture objects golive left in this source (any run), named: a forgotten slot fills the disk."""
        return []
