"""``golive migrate status | cutover | abort``: where an online migration stands, say when to cut over, undo it.

``golive migrate db --online`` runs the migration; these commands talk to it through the target's bookkeeping
(from another terminal, another machine, CI): no Prefect needed.
"""

from __future__ import annotations

from typing import Optional

import typer
from rich.table import Table

from golive.cli import migrate_app
from golive.cli._common import console, echo, handle_errors, resolve_block

_SOURCE = typer.Option(..., "--source", "-s", help="The migration's source URL (or block:NAME).")
_TARGET = typer.Option(..., "--target", "-t", help="The migration's target URL (or block:NAME).")
_RUN = typer.Option(None, "--run", help="The run's key, when several online migrations of this source run.")


@migrate_app.command("status")
@handle_errors
def status(source: str = _SOURCE, target: str = _TARGET) -> None:
    """Where online migrations stand: status, lag position, write freeze, leftovers in the source."""
    from golive import commands
    from golive.migrate import online

    src, dst = commands.database_urls(resolve_block(source), resolve_block(target))
    found = online.runs(dst, src)
    t = Table(title=f"Online migrations of {src.masked}", title_justify="left")
    for col in ("run", "status", "tables", "lag", "changes applied", "refused", "write freeze"):
        t.add_column(col)
    for s in found:
        freeze = "" if s.freeze_seconds is None else f"{s.freeze_seconds:.2f} s"
        lag = s.meta.get("lag")
        lag = (f"{lag['pending']} pending, {lag['seconds']} s behind ({lag['at'][11:19]} UTC)"
               if lag and s.status == "copied" else "")
        t.add_row(s.run_key, s.status, str(s.tables), lag, str(s.meta.get("changes_applied", 0)),
                  str(len(s.meta.get("rejects", []))), freeze)
    console.print(t) if found else echo("No online migration of this source into this target.")
    left = online.leftovers(src)
    if left:
        from golive.cli.db import summarize_objects

        echo("golive's objects in the source: " + summarize_objects(left) + " (after a cut-over, the fence that "
             "keeps the old database from taking writes; `golive migrate abort` removes them all)")


@migrate_app.command("cutover")
@handle_errors
def cutover(source: str = _SOURCE, target: str = _TARGET, run: Optional[str] = _RUN) -> None:
    """Ask a running `migrate db --online --cutover manual` to cut over now."""
    from golive import commands
    from golive.migrate import online

    src, dst = commands.database_urls(resolve_block(source), resolve_block(target))
    state = online.active_run(dst, src, run)
    online.request_cutover(dst, state)
    echo(f"Cut-over requested for run {state.run_key} ({state.status}); the migration picks it up within seconds.")


@migrate_app.command("abort")
@handle_errors
def abort(source: str = _SOURCE, target: str = _TARGET, run: Optional[str] = _RUN) -> None:
    """Remove what online migration added to the source (slot, triggers, fence): it takes writes again."""
    from golive import commands
    from golive.migrate import online

    src, dst = commands.database_urls(resolve_block(source), resolve_block(target))
    found = [s for s in online.runs(dst, src) if s.status != "aborted" and (run is None or s.run_key == run)]
    removed = []
    for state in found:
        removed += online.abort(src, dst, state)
    removed += online.remove_leftovers(src) if run is None else []
    from golive.cli.db import summarize_objects

    echo(("Removed from the source: " + summarize_objects(removed)) if removed
         else "Nothing of golive's left in the source.")
