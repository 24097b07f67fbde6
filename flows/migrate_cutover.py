"""Flow: ask a running online migration (``--cutover manual``) to cut over now.

The Prefect UI's way to say "go" (deployment ``migrate-cutover``); ``golive migrate cutover`` does the same from a
terminal. The running ``migrate-database-online`` flow sees the request at its next catch-up round (within
seconds), fences the source, drains, and runs the cut-over command.
"""

from __future__ import annotations

from pydantic import SecretStr

from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from golive import commands
from golive.migrate import online


@model_params_flow(name="migrate-cutover", persist_result=False, log_prints=False)
def migrate_cutover(source: SecretStr, target: SecretStr, run: str = "") -> dict:
    """Ask the online migration of ``source`` into ``target`` to cut over.

    Args:
        source: the source URL as given to the migration, or block:NAME.
        target: the target URL, or block:NAME.
        run: the run's key, when several online migrations of this source run into this target.
    """
    source, target = resolve_url(source, "source"), resolve_url(target, "target")
    src, dst = commands.parse_source(source), commands.parse_target(target)
    state = online.active_run(dst, src, run or None)
    online.request_cutover(dst, state)
    return {"run_key": state.run_key, "status": state.status, "requested": True}
