"""``golive migrate db``: plan (dry run) or run the migration flow, show progress and the outcome."""

from __future__ import annotations

import os
import time
from typing import Optional

import typer
from rich.markup import escape
from rich.table import Table  # noqa: F401  (report table)

from golive.cli import migrate_app
from golive.cli._common import console, echo, err_console, handle_errors, note, note_prefect_api, resolve_block
from golive.config import MigrateOptions

T0 = time.perf_counter()  # when this command started (module import happens at CLI start)


@migrate_app.command("db")
@handle_errors
def migrate_db(
    source: str = typer.Option(..., "--source", "-s", help=(
        "sqlite:///app.db (or a path), mysql://user[:pass]@host[:port]/db (also mariadb://), postgresql://…, "
        "or block:NAME (a Prefect Secret block holding the URL)")),
    target: str = typer.Option(..., "--target", "-t", help=(
        "postgresql://user[:pass]@host[:port]/db, embedded://DIR, mysql://user[:pass]@host[:port]/db, or block:NAME")),
    tables: Optional[list[str]] = typer.Option(None, "--tables", help="Only these tables (comma-separated or repeated)."),
    exclude: Optional[list[str]] = typer.Option(None, "--exclude", help="Leave these tables out."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and the values that would be rejected; write nothing."),
    report: Optional[str] = typer.Option(None, "--report", help="Write the JSON report here."),
    rejects: Optional[str] = typer.Option(None, "--rejects", help="Write rejected rows (JSON lines) here."),
    drop_existing: bool = typer.Option(False, "--drop-existing", help="Replace target tables of the same names."),
    max_rejects: int = typer.Option(0, "--max-rejects", min=0, help="Rejected rows tolerated (exit 0) before the run fails."),
    workers: int = typer.Option(4, "--workers", min=1, max=64, help="Concurrent chunk copies."),
    identifiers: str = typer.Option("preserve", "--identifiers", help="preserve (as the ORM made them) or snake."),
    schema: str = typer.Option("public", "--schema", help="Target schema."),
    chunk_rows: int = typer.Option(250_000, "--chunk-rows", min=1, help="Rows per chunk (one retryable task)."),
    runner: str = typer.Option("thread", "--runner", help="thread (default) or dask."),
    dask_address: Optional[str] = typer.Option(None, "--dask-address", help="Dask scheduler address (default: a local cluster)."),
    validate: bool = typer.Option(True, "--validate/--no-validate", help="Validate the copy at the end."),
    text_encoding_fallback: Optional[str] = typer.Option(None, "--text-encoding-fallback", help=(
        "SQLite: decode text that is not UTF-8 from this legacy encoding (e.g. cp1252) instead of rejecting it.")),
    invalid_text: str = typer.Option("reject", "--invalid-text", help=(
        "SQLite: text that is not UTF-8: reject, an encoding to decode it from (cp1252, ...), or bytes (kept byte "
        "for byte: the column becomes binary).")),
    type_mismatch: str = typer.Option("reject", "--type-mismatch", help=(
        "SQLite: text in an INTEGER/NUMERIC column: reject, or widen (the column becomes text).")),
    null_keys: str = typer.Option("reject", "--null-keys", help="SQLite: NULLs in a non-rowid primary key: reject or rowid."),
    zero_dates: str = typer.Option("null", "--zero-dates", help="MySQL: zero dates in NOT NULL columns: null, reject or epoch."),
    datetime_as: str = typer.Option("timestamp", "--datetime-as", help="MySQL DATETIME: timestamp (wall clock) or timestamptz."),
    source_time_zone: str = typer.Option("UTC", "--source-time-zone", help="MySQL: the zone of DATETIME values (--datetime-as timestamptz)."),
    snapshot: str = typer.Option("auto", "--snapshot", help="MySQL/PostgreSQL sources: auto, lock or none (see README)."),
    source_schema: Optional[list[str]] = typer.Option(None, "--source-schema", help="PostgreSQL sources: schemas to copy (default public)."),
    uuid_binary: bool = typer.Option(False, "--uuid-binary", help="MySQL: BINARY(16) columns become uuid."),
    online: bool = typer.Option(False, "--online", help=(
        "The app keeps writing: capture its changes, copy, catch up, then cut over in seconds (docs/migrate.md).")),
    cutover: str = typer.Option("auto", "--cutover", help=(
        "--online: auto (once the lag is within --max-lag) or manual (`golive migrate cutover` says when).")),
    max_lag: str = typer.Option("2s", "--max-lag", help="--online, auto: cut over once this close (2s, 500ms)."),
    cutover_command: Optional[str] = typer.Option(None, "--cutover-command", help=(
        "--online: run once the source is fenced and the target caught up (switch the app, restart it).")),
    cutover_check: str = typer.Option("changed", "--cutover-check", help=(
        "--online: before the switch compare the rows changed since the copy began (changed), or all (full).")),
    keyless: bool = typer.Option(False, "--keyless", help=(
        "--online: capture tables without a primary key by their whole row (else they are refused).")),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Show Prefect's log lines."),
) -> None:
    """Migrate a database (SQLite, MySQL/MariaDB, PostgreSQL) into PostgreSQL or MySQL/MariaDB (schema, data, keys,
    indexes, views) and report every reject."""
    from golive import commands
    from golive.errors import ConfigError

    choices = {"--identifiers": (identifiers, ("preserve", "snake")), "--runner": (runner, ("thread", "dask")),
               "--null-keys": (null_keys, ("reject", "rowid")), "--zero-dates": (zero_dates, ("null", "reject", "epoch")),
               "--datetime-as": (datetime_as, ("timestamp", "timestamptz")),
               "--snapshot": (snapshot, ("auto", "lock", "none")),
               "--type-mismatch": (type_mismatch, ("reject", "widen")), "--cutover": (cutover, ("auto", "manual")),
               "--cutover-check": (cutover_check, ("changed", "full"))}
    for opt, (value, allowed) in choices.items():
        if value not in allowed:
            raise ConfigError(f"{opt} must be {' or '.join(allowed)}, not {value!r}")
    if text_encoding_fallback:
        import codecs

        try:
            codecs.lookup(text_encoding_fallback)
        except LookupError:
            raise ConfigError(f"--text-encoding-fallback: unknown encoding {text_encoding_fallback!r} "
                              "(e.g. cp1252, latin-1, gbk, shift_jis)") from None
    if invalid_text not in ("reject", "bytes"):
        import codecs

        try:
            codecs.lookup(invalid_text)
        except LookupError:
            raise ConfigError(f"--invalid-text must be reject, bytes or an encoding (cp1252, latin-1, gbk, ...), "
                              f"not {invalid_text!r}") from None
    options = MigrateOptions(tables=tables, exclude=exclude or [], target_schema=schema, dry_run=dry_run,
                             drop_existing=drop_existing, max_rejects=max_rejects, workers=workers,
                             identifiers=identifiers, chunk_rows=chunk_rows, report=report, rejects=rejects,
                             validate_after=validate, text_encoding_fallback=text_encoding_fallback,
                             null_keys=null_keys, zero_dates=zero_dates, datetime_as=datetime_as,
                             source_time_zone=source_time_zone, snapshot=snapshot, source_schemas=source_schema,
                             uuid_binary=uuid_binary, invalid_text=invalid_text, type_mismatch=type_mismatch,
                             online=online, cutover=cutover, max_lag=max_lag, cutover_command=cutover_command,
                             cutover_check=cutover_check,
                             keyless=keyless)
    if online:
        from golive.units import parse_duration

        parse_duration(max_lag, name="--max-lag")
        if runner != "thread":
            raise ConfigError("--online runs its copy in this process (the capture's snapshot): drop --runner dask")
    # Fail fast on bad input, before any orchestration starts (the target's connection is checked by
    # the plan, which runs while Prefect starts up).
    src, dst = commands.database_urls(resolve_block(source), resolve_block(target), start=not dry_run)
    if dry_run:
        plan = commands.plan_migration(src.raw, dst.raw, options)
        outcome = commands.dry_run_outcome(dst.raw, plan, options)
        show_plan(plan, outcome["existing"], options, resumable=outcome["resumable"])
        if outcome["problem"]:  # a dry run exits as the run would: 2 refused, 1 failed
            word = "be refused" if outcome["exit_code"] == 2 else "fail"
            echo(f"[red]The migration would {word}[/] (exit {outcome['exit_code']}): {escape(outcome['problem'])}")
        if report:
            from golive.report import write_json

            write_json(report, {"ok": not outcome["exit_code"], "dry_run": True, "exit_code": outcome["exit_code"],
                                "problem": outcome["problem"], "existing_tables": outcome["existing"],
                                "plan": plan.model_dump()})
        raise typer.Exit(outcome["exit_code"])

    report_data = run_flow(src.raw, dst.raw, options, runner=runner, dask_address=dask_address, verbose=verbose)
    if report_data.get("already_complete"):
        echo(f"[green]ok[/]: {escape(report_data['already_complete'])}")
        raise typer.Exit(0)
    show_report(report_data)
    raise typer.Exit(report_data.get("exit_code", 1))


def run_flow(source: str, target: str, options: MigrateOptions, *, runner: str = "thread",
             dask_address: str | None = None, verbose: bool = False) -> dict:
    """Run the migration flow in this process with a progress bar on stderr."""
    from pydantic import SecretStr

    note_prefect_api()
    import threading

    from golive import commands
    from golive.dialects import get_dialect

    t0 = time.perf_counter()
    quiet_prefect_console(verbose)
    # Plan while Prefect starts up; bad input is refused before any flow run exists.
    planned: dict = {}

    def plan() -> None:
        try:
            planned["plan"] = commands.prefetch_plan(source, target, options)
        except BaseException as exc:  # re-raised in the main thread
            planned["error"] = exc
            return
        plan_ = planned["plan"]
        if runner == "thread" and not plan_.resumed and not options.online \
                and not get_dialect(plan_.source_dialect).source.shares_snapshot \
                and os.environ.get("GOLIVE_READ_AHEAD", "1") != "0":
            # the first chunks' rows are read while Prefect is still starting (a core would idle); a server
            # source reads in the flow's snapshot instead, and an online copy after its capture began
            try:
                from golive.migrate.readahead import read_ahead
                from golive.migrate.schedule import copy_order

                read_ahead(commands.parse_source(source), plan_.context(), copy_order(plan_))
            except Exception:  # an optimisation only: the copy tasks read everything themselves
                pass

    planner = threading.Thread(target=plan, name="golive-plan", daemon=True)
    planner.start()
    from flows.foreground import run_in_foreground
    from flows.migrate_database import migrate_database, on_dask

    planner.join()
    if isinstance(planned.get("error"), commands.AlreadyMigrated):  # run again after a kill past the end
        result = {"ok": True, "exit_code": 0, "already_complete": str(planned["error"])}
        if options.report:
            from golive.report import write_json

            write_json(options.report, result)
        return result
    if "error" in planned:
        raise planned["error"]
    flow = migrate_database if runner == "thread" else on_dask(dask_address, options.workers)
    if options.online:
        from flows.migrate_online import migrate_online as flow
    with _Progress(planned["plan"], by_chunk=runner == "dask") as bar:
        bar.started = t0
        try:
            state = run_in_foreground(flow, source=SecretStr(source), target=SecretStr(target), options=options,
                                      return_state=True)
        finally:
            from golive.migrate.readahead import drop_read_ahead

            drop_read_ahead()
    result = state.result(raise_on_failure=False)
    if isinstance(result, BaseException):
        raise result
    # what the user waited for, measured from the command's start (the flow only sees its own part)
    result["command_seconds"] = round(time.perf_counter() - T0, 3)
    result["first_row_seconds"] = round(bar.first_row - T0, 3) if bar.first_row else None
    if options.report:
        from golive.report import write_json

        write_json(options.report, result)
    return result


def quiet_prefect_console(verbose: bool) -> None:
    """Keep Prefect's per-run log lines out of the terminal (they still reach the Prefect API / UI).

    golive prints its own progress and one line per failure; ``--verbose`` shows Prefect's lines too.
    Must run before Prefect configures logging (it reads ``PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL``).
    """
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")


class _Progress:
    """A rich progress bar fed by golive.progress events (rows per batch, chunks, tables)."""

    def __init__(self, plan=None, by_chunk: bool = False):
        self.plan = plan
        self.by_chunk = by_chunk  # tasks in other processes (Dask): count whole chunks as they finish

    def __enter__(self):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        from golive import progress

        self.started = time.perf_counter()
        self.first_row = None
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("rows"), TimeElapsedColumn(), console=err_console, transient=False,
                                 disable=not err_console.is_terminal)
        self.task = None
        self.progress.start()
        self.stop = progress.listen(self.on_event)
        if self.plan is not None:
            self.on_event("planned", plan=self.plan)
        return self

    def on_event(self, event: str, **data) -> None:
        if event == "planned":
            if self.task is not None:
                return
            plan = data["plan"]
            verb = "Resuming" if plan.resumed else "Copying"
            self.task = self.progress.add_task(f"{verb} {len(plan.tables)} tables", total=plan.total_rows)
            if not err_console.is_terminal:
                note(f"{verb} {len(plan.tables)} tables, {plan.total_rows} rows in {plan.chunk_count} chunks")
        elif event == ("chunk" if self.by_chunk else "rows") and self.task is not None:
            if self.first_row is None and data["rows"] > 0:
                self.first_row = time.perf_counter()
            self.progress.advance(self.task, data["rows"])
        elif event == "phase" and self.task is not None:
            self.progress.update(self.task, description=f"Building {data['name']}")
        elif event == "lag":
            self.show_lag(**data)

    def show_lag(self, pending: int, seconds: float, applied: int = 0) -> None:
        """Online: the catch-up's lag, one line that updates (a line per round when not a terminal)."""
        text = f"Catching up: {pending} changes pending, {seconds:.1f} s behind ({applied} applied)"
        if not err_console.is_terminal:  # a log: a line when something moved, else one a minute
            if text != getattr(self, "lag_text", None) or time.monotonic() - getattr(self, "lag_at", 0) >= 60:
                note(text)
                self.lag_text, self.lag_at = text, time.monotonic()
            return
        if getattr(self, "lag_task", None) is None:
            self.lag_task = self.progress.add_task(text, total=None)
        self.progress.update(self.lag_task, description=text)

    def __exit__(self, *exc):
        self.stop()
        self.progress.stop()
        return False


# ---------------------------------------------------------------------- rendering


def show_plan(plan, existing: list[str], options: MigrateOptions, *, resumable: bool = False) -> None:
    echo(f"[bold]Plan[/] {plan.source} -> {plan.target}{_in_schema(plan.target_dialect, plan.target_schema)}, "
         f"{len(plan.tables)} tables, {plan.total_rows} rows, {plan.chunk_count} chunks; nothing was written.")
    for tp in plan.tables:
        # names, types and reasons come from the source: escaped, so rich prints "[x]" instead of eating it
        echo(f"\n[bold]{escape(tp.source)}[/]" + (f" -> {escape(tp.target)}" if tp.target != tp.source else "")
             + f"  ({tp.rows} rows, {len(tp.chunks)} chunks)")
        for c in tp.columns:
            name = c.source if c.source == c.target else f"{c.source} -> {c.target}"
            line = escape(f"  {name}: {c.declared or '(no type)'} -> {c.sql_type}{' identity' if c.identity else ''}"
                          f"  ({c.reason})")
            notes = [n for n in c.notes if n != c.default_reason]  # the default's own line says it
            if notes:
                color = "red" if c.predicted_rejects else "yellow"
                line += f" [{color}]{escape('; '.join(notes))}[/]"
            echo(line, soft_wrap=True)
            if c.default_source is not None and c.default_source.upper() != "NULL":
                echo(f"    default {escape(c.default_source)} -> {escape(c.default_sql or 'none')}  "
                     f"({escape(c.default_reason)})", soft_wrap=True)
        keys = [f"{ix.kind} {ix.name}({', '.join(ix.columns) or ix.expression_sql})" for ix in tp.indexes]
        fks = [f"{fk.name} -> {fk.ref_table}" for fk in tp.foreign_keys]
        if keys:
            echo("  keys/indexes: " + escape(", ".join(keys)))
        if fks:
            echo("  foreign keys: " + escape(", ".join(fks)))
    predicted = sum(c.predicted_rejects for tp in plan.tables for c in tp.columns)
    if predicted:
        echo(f"[red]About {predicted} values will be rejected[/] (see notes above); "
             f"--max-rejects {options.max_rejects} allows {options.max_rejects}.")
    if plan.views:
        from golive.dialects import get_dialect

        echo(f"Views (created when their SQL runs on {get_dialect(plan.target_dialect).title}): "
             + escape(", ".join(v.source for v in plan.views)))
    _list("Skipped", [f"{s.kind} {s.name}: {s.reason}" for s in plan.skipped])
    _list("Renamed", [f"{r.kind} {r.source} -> {r.target} ({r.reason})" for r in plan.renamed])
    _list("Warnings", plan.warnings)
    if existing:
        how = ("they will be dropped (--drop-existing)" if options.drop_existing else
               "an interrupted run of this migration: the run resumes it" if resumable else
               "the run would be refused without --drop-existing")
        echo(f"[yellow]Target already has {escape(', '.join(existing))}[/]: {how}.")


def _in_schema(dialect: str, schema: str | None) -> str:
    """`` (schema NAME)`` for a target engine with schemas (PostgreSQL); nothing for one without (MySQL)."""
    from golive.dialects import get_dialect

    return f" (schema {schema})" if schema and get_dialect(dialect).has_schemas else ""


def show_report(rep: dict) -> None:
    t = Table(title="Migration" + (" (resumed)" if rep.get("resumed") else ""), title_justify="left")
    for col, just in (("table", "left"), ("target", "left"), ("read", "right"), ("written", "right"),
                      ("rejected", "right"), ("seconds", "right"), ("rows/s", "right")):
        t.add_column(col, justify=just)
    for x in rep["tables"]:
        rej = str(x["rows_rejected"]) if not x["rows_rejected"] else f"[red]{x['rows_rejected']}[/]"
        t.add_row(x["source"], x["target"], str(x["rows_read"]), str(x["rows_written"]), rej,
                  f"{x['seconds']:.1f}", str(x["rows_per_second"] or ""))
    console.print(t)
    for g in rep.get("reject_summary", []):
        echo("[red]rejected[/] " + escape(f"{g['count']} x {g['table']}.{g['column']}: {g['reason']} "
                                          f"(e.g. key {g['example_key']})"))
    _list("Skipped", [f"{s['kind']} {s['name']}: {s['reason']}" for s in rep.get("skipped", [])])
    _list("Warnings", rep.get("warnings", []))
    _list("[red]Errors[/]", rep.get("errors", []))
    val = rep.get("validation")
    if val is not None:
        echo(f"Validation: {'[green]passed[/]' if val.get('ok') else '[red]FAILED[/]'}"
             + (f" ({escape(val['summary'])})" if val.get("summary") else ""))
    on = rep.get("online")
    if on:
        echo(f"Online: {on['changes_applied']} changed rows applied during the catch-up, "
             f"{on.get('checked_rows', 0)} compared value by value before the switch; write freeze "
             f"{on['freeze_seconds']:.2f} s (fenced {on.get('fenced_at') or '-'})")
        for r in on.get("rejects", [])[:20]:
            echo(f"[red]refused[/] {escape(r['table'])} key {escape(str(r['key']))}: {escape(r['reason'])}")
        if on.get("removed"):
            echo("Removed from the source: " + escape(summarize_objects(on["removed"])))
    where = rep["target"] + (_in_schema(rep["target_dialect"], rep.get("schema")) if rep.get("target_dialect") else "")
    status = "[green]OK[/]" if rep["ok"] else "[red]FAILED[/]"
    echo(f"{status}: {rep['rows_written']} rows written to {where}, {rep['rows_rejected']} rejected, "
         f"in {rep['seconds']:.1f} s.")
    if rep.get("rejects"):
        echo(f"Rejected rows: {rep['rejects']}")


def summarize_objects(names: list[str], limit: int = 6) -> str:
    """``trigger a, trigger b, table c`` as is when short, else counted by kind (``33 triggers, 1 table``)."""
    if len(names) <= limit:
        return ", ".join(names)
    kinds: dict[str, int] = {}
    for n in names:
        kind = n.split(" ", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {k}{'s' if n > 1 else ''}" for k, n in kinds.items())


def _list(title: str, items: list[str], limit: int = 30) -> None:
    if not items:
        return
    echo(f"{title}:")
    for s in items[:limit]:
        echo(f"  - {escape(s)}")
    if len(items) > limit:
        echo(f"  ... and {len(items) - limit} more (see the JSON report)")
