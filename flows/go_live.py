"""Flow ``go-live``: the whole move from development to production, as one resumable run.

pre-check -> backup of the source -> migrate the database -> validate -> upload the files -> verify them ->
rewrite the file paths on the target -> report. Each step is golive's own flow, run as a subflow (its
retries, artifacts and resume are its own), or a task; a journal (``<state_dir>/go-live/<key>.json``)
records each finished step, so running again after a crash or a failure starts at the first unfinished
step. A failed step stops the run with a Failed state that names it.

Run it with ``golive go-live --config golive.toml`` (CLI), from the Prefect UI (deployment ``go-live``:
the form is the configuration), or in CI with ``prefect deployment run go-live/go-live --param
config_file=golive.toml --watch``.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed
from pydantic import SecretStr

from flows.artifacts import artifact_key
from flows.credentials import resolve_url
from flows.foreground import model_params_flow
from golive import progress
from golive.errors import ConfigError
from golive.go_live import recheck, report as glr
from golive.go_live.config import GoLiveConfig, load_config
from golive.go_live.precheck import Resolved, in_config_words
from golive.go_live.state import Journal
from golive.report import write_json
from tasks.go_live import done_step, run_dry_run, run_precheck


class StepFailed(Exception):
    """A go-live step did not succeed; the run stops there (the journal and the report say so)."""

    def __init__(self, step: str, message: str):
        super().__init__(f"go-live stopped at step {step}: {message}")
        self.step, self.message = step, message


@model_params_flow(name="go-live", persist_result=False, log_prints=False)
def go_live(config: GoLiveConfig | None = None, config_file: str | None = None, dry_run: bool = False,
            restart: bool = False) -> dict:
    """Move an app to production: database, validation, files, paths; resumable at the first unfinished step.

    Args:
        config: The go-live (source, target, bucket, path columns, each step's options); URLs may be
            block:NAME (a Prefect Secret block holding the URL). Empty when config_file is given.
        config_file: A golive.toml on the worker (relative to its working directory), instead of config.
        dry_run: Run every step's dry run and return one combined plan; write nothing.
        restart: Forget which steps are done and start again at the pre-check.
    """
    cfg = _config(config, config_file)
    r = resolve_config(cfg)
    if dry_run:
        return _dry_run(r)
    journal = Journal(r.state_dir, r.key)
    if restart:
        journal.reset()
    run = Steps(journal, r)
    try:
        # 1. Pre-check: source, target empty or resumable, rewrite columns, uploads, bucket, backup, disk
        run.step("precheck", lambda: precheck_step(r))
        # 2. Back up the source (the backup-database flow: SQLite file, MySQL or PostgreSQL dump)
        run.step("backup", lambda: backup_step(r))
        if cfg.migrate.online:
            # 3. Online ([migrate] online): the files first, while the app writes; then the database, whose
            #    cut-over uploads the files added since and rewrites the paths inside the write freeze
            run.step("migrate-files", lambda: files_step(r))
            run.step("migrate-db", lambda: migrate_step(r))
            run.step("verify-files", lambda: verify_step(r))
            return run.report()
        # 3. Migrate the database (the migrate-database flow; it resumes an interrupted copy)
        run.step("migrate-db", lambda: migrate_step(r))
        # 4. Validate the copy (the validate-migration flow: content checksums and GX suites)
        run.step("validate", lambda: validate_step(r))
        # 5. Upload the files, then 6. verify them (migrate-files and verify-files flows)
        run.step("migrate-files", lambda: files_step(r))
        run.step("verify-files", lambda: verify_step(r))
        # 7. Rewrite the file-path columns on the target (the rewrite-paths flow, per column)
        run.step("rewrite-paths", lambda: rewrite_step(r))
    except StepFailed as exc:
        report = run.report()
        return Failed(message=str(exc), data=report)
    # 8. Report: JSON and markdown artifact, every step's outcome and where everything is
    return run.report()


# ---------------------------------------------------------------- configuration and credentials


def _config(config: GoLiveConfig | None, config_file: str | None) -> GoLiveConfig:
    if config is not None and config_file:
        raise ConfigError("give the go-live's config or config_file, not both")
    if config_file:
        return load_config(config_file)
    if config is None:
        raise ConfigError("no go-live configuration: give config (the form) or config_file (a golive.toml)")
    return config


def resolve_config(cfg: GoLiveConfig) -> Resolved:
    """Load what the configuration's blocks hold (database URLs, bucket, keys), in this process only."""
    from golive.backup import StorageOptions
    from golive.storage import StorageConfig

    from flows.credentials import s3_settings

    state_dir = Path(cfg.state_dir).absolute()
    r = Resolved(config=cfg, source=resolve_url(cfg.source.database, "source.database"),
                 target=resolve_url(cfg.target.database, "target.database"), state_dir=state_dir)
    t = cfg.target
    blocks = s3_settings(credentials_block=t.credentials_block, bucket_block=t.bucket_block) \
        if (t.bucket_block or t.credentials_block) else None
    keys = (blocks.credentials if blocks else None) or {}
    endpoint = t.endpoint_url or (blocks.endpoint_url if blocks else None)
    region = t.region or (blocks.region if blocks else None)
    style = t.addressing_style if t.addressing_style != "auto" or not blocks else (blocks.addressing_style or "auto")
    if cfg.has_files():
        r.bucket = blocks.dest if t.bucket_block else t.bucket
        r.bucket_storage = StorageConfig(
            dest=r.bucket, endpoint_url=endpoint, region=region, addressing_style=style,
            access_key_id=_as_secret(keys.get("aws_access_key_id")),
            secret_access_key=_as_secret(keys.get("aws_secret_access_key")),
            session_token=_as_secret(keys.get("aws_session_token")))
    b = cfg.backup
    if b.enabled:
        r.backup_to = b.to or f"file://{state_dir / 'backups'}"
        bkeys = s3_settings(credentials_block=b.credentials_block).credentials if b.credentials_block else keys
        bkeys = bkeys or {}
        r.backup_storage = StorageOptions(
            endpoint_url=b.endpoint_url or endpoint, region=region, addressing_style=style,
            access_key_id=_as_secret(bkeys.get("aws_access_key_id")),
            secret_access_key=_as_secret(bkeys.get("aws_secret_access_key")),
            session_token=_as_secret(bkeys.get("aws_session_token")))
    return r


def _as_secret(v):
    if v is None:
        return None
    return v if isinstance(v, SecretStr) else SecretStr(v)


# ---------------------------------------------------------------- the steps


class Steps:
    """Runs each step once: a step the journal records as done is skipped; a failed one stops the run."""

    def __init__(self, journal: Journal, r: Resolved):
        self.journal, self.r = journal, r
        self.wanted = r.config.steps()
        self.ran: set[str] = set()  # steps run (not taken as done) in this run
        self.t0 = time.perf_counter()
        self.logger = get_run_logger()

    def step(self, name: str, fn) -> None:
        if name not in self.wanted:
            return
        if self.journal.done(name):
            e = self.journal.data["steps"][name]
            # what the step left is looked for again: a Cached task run when it is there, else the step runs again
            reran = [d for d in recheck.DEPENDS.get(name, ()) if d in self.ran]
            if done_step(self.r, name, e, reran, return_state=True).name == "Cached":
                progress.emit("go-live-step", step=name, status="skipped", line=glr.line(name, e.get("summary")))
                self.logger.info("Step %s: done already (finished %s): %s", name, e.get("finished_at"),
                                 glr.line(name, e.get("summary")))
                return
        self.ran.add(name)
        self.logger.info("Step %s: %s", name, glr.TITLES[name])
        progress.emit("go-live-step", step=name, status="running", line="")
        self.journal.start(name)
        try:
            ok, summary, message = fn()
        except Exception as exc:  # the step could not run at all: one line, recorded, then the run stops
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            message = in_config_words(message)
            self.journal.fail(name, message)
            progress.emit("go-live-step", step=name, status="failed", line=message)
            raise StepFailed(name, message) from None
        message = in_config_words(message or "")
        if not ok:
            self.journal.fail(name, message, summary)
            progress.emit("go-live-step", step=name, status="failed", line=message)
            raise StepFailed(name, message)
        self.journal.finish(name, summary)
        progress.emit("go-live-step", step=name, status="done", line=glr.line(name, summary))
        self.logger.info("Step %s done: %s", name, glr.line(name, summary))

    def report(self) -> dict:
        """The final report (also of a failed run), as JSON and as a markdown artifact."""
        r, cfg = self.r, self.r.config
        where = {"journal": self.journal.path, "reports": r.run_dir(), "target": r.target.get_secret_value(),
                 "bucket": r.bucket, "backups": r.backup_to,
                 "backup": self.journal.data["steps"].get("backup", {}).get("summary", {}).get("url"),
                 "migration report": self.journal.data["steps"].get("migrate-db", {}).get("summary", {}).get("report"),
                 "rejected rows": self.journal.data["steps"].get("migrate-db", {}).get("summary", {}).get("rejects"),
                 "upload manifest": self.journal.data["steps"].get("migrate-files", {}).get("summary", {}).get("manifest"),
                 "validation": self.journal.data["steps"].get("validate", {}).get("summary", {}).get("output_dir")}
        self.journal.finish("report", {"path": str(r.run_dir() / "report.json")})
        rep = glr.build(self.journal, self.wanted, where=where,
                        config_summary={"steps": self.wanted, "rewrite": [f"{x.table}.{x.column}" for x in cfg.rewrite]})
        rep["seconds"] = round(time.perf_counter() - self.t0, 3)
        write_json(r.run_dir() / "report.json", rep)
        create_markdown_artifact(glr.markdown(rep), key=artifact_key("go-live", r.target),
                                 description=("COMPLETE" if rep["ok"] else "FAILED") + ": " + rep["state"][:200])
        return rep


def _state_result(state):
    """A subflow's outcome: (completed?, its returned value or the data of its Failed state, its message)."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, BaseException):
        report = getattr(value, "context", {}).get("report") if hasattr(value, "context") else None
        return state.is_completed(), report, str(value)
    return state.is_completed(), value, state.message or ""


def precheck_step(r: Resolved):
    result = run_precheck(r)
    errors = result.errors()
    return not errors, result.summary(), "; ".join(errors[:3]) + (f" (and {len(errors) - 3} more)"
                                                                   if len(errors) > 3 else "")


def backup_step(r: Resolved):
    from flows.backup_database import BackupParams, backup_database
    from flows.backup_params import StorageParams

    cfg, t = r.config.backup, r.config.target
    storage = StorageParams(endpoint_url=cfg.endpoint_url or t.endpoint_url, region=t.region,
                            addressing_style=t.addressing_style,
                            credentials_block=cfg.credentials_block or t.credentials_block,
                            encrypt_key_block=cfg.encrypt_key_block)
    params = BackupParams(db=r.source, to=r.backup_to, compress=cfg.compress, storage=storage, verify=cfg.verify,
                          create_bucket=r.config.files.create_bucket,
                          report_path=str(r.run_dir() / "backup.json"))
    ok, rep, message = _state_result(backup_database(params, return_state=True))
    b = (rep or {}).get("backup", {})
    summary = {"id": b.get("id"), "url": b.get("url"), "rows": b.get("rows"), "tables": b.get("tables"),
               "stored_bytes": b.get("stored_bytes"), "seconds": b.get("seconds"),
               "verified": (rep or {}).get("verification", {}).get("status") if cfg.verify else None}
    return ok, summary, message


def migrate_step(r: Resolved):
    from flows.migrate_database import migrate_database

    options = r.migrate_options()
    earlier = own_failed_migration(r)
    if earlier:  # this go-live's own copy, finished with rejects or errors: it is replaced, not refused
        message = (f"replacing the tables of this go-live's earlier migration (run {earlier['run_key']}, which "
                   f"failed at {earlier['finished_at']})")
        get_run_logger().warning(message)
        progress.emit("go-live-note", message=message)
        options = options.model_copy(update={"drop_existing": True})
    if options.online:
        from golive import commands
        from golive.migrate import online

        with online.before_switch(commands.parse_target(r.target), options.target_schema, lambda: freeze_step(r)):
            ok, rep, message = _state_result(migrate_database(r.source, r.target, options, return_state=True))
    else:
        ok, rep, message = _state_result(migrate_database(r.source, r.target, options, return_state=True))
    rep = rep or {}
    summary = {k: rep.get(k) for k in ("run_key", "rows_read", "rows_written", "rows_rejected", "resumed", "rejects",
                                       "seconds")}
    if rep.get("online"):
        on = rep["online"]
        summary["online"] = {k: on.get(k) for k in ("freeze_seconds", "changes_applied", "checked_rows",
                                                    "before_switch")}
    summary.update(tables=len(rep.get("tables", [])), report=str(r.run_dir() / "migration.json"),
                   errors=rep.get("errors", [])[:5])
    return ok and rep.get("ok", False), summary, message or "; ".join(rep.get("errors", [])[:3])


def freeze_step(r: Resolved) -> dict:
    """Inside an online go-live's write freeze (source fenced, database caught up and checked, app not yet
    switched): upload the files added since the first pass, then rewrite the file paths. Plain golive calls (no
    subflows: this runs inside the cut-over task); any problem stops the cut-over before the app switches."""
    from golive.files import rewrite as rw, sync

    out: dict = {}
    if r.config.has_files():
        c, st = r.config, r.bucket_storage
        creds = {k: v.get_secret_value() for k, v in (("aws_access_key_id", st.access_key_id),
                                                      ("aws_secret_access_key", st.secret_access_key),
                                                      ("aws_session_token", st.session_token)) if v is not None}
        t0 = time.perf_counter()
        rep = sync.upload_folder(c.source.uploads, r.bucket, endpoint_url=st.endpoint_url, region=st.region,
                                 addressing_style=st.addressing_style, workers=c.files.workers,
                                 state_dir=r.state_dir, follow_symlinks=c.files.follow_symlinks,
                                 credentials=creds or None, report_path=r.run_dir() / "files-delta.json")
        if rep.exit_code:
            raise RuntimeError(f"the last uploads: {len(rep.problems)} files not uploaded and verified "
                               f"(see {r.run_dir() / 'files-delta.json'})")
        out["files"] = {"uploaded": rep.uploaded, "unchanged": rep.unchanged,
                        "seconds": round(time.perf_counter() - t0, 3)}
    for x in r.config.rewrite:
        t0 = time.perf_counter()
        job = rw.make_rewrite_job(r.target.get_secret_value(), x.table, x.column, to=x.template,
                                  strip_prefix=x.strip_prefix, dest=r.bucket, state_dir=str(r.state_dir),
                                  batch_size=x.batch_size)
        rep = rw.rewrite_paths(job)
        if rep.missing and not x.allow_missing:
            raise RuntimeError(f"rewrite {x.table}.{x.column}: {rep.missing} row(s) name a file that was not "
                               "uploaded; they keep their value: restore the files, or set allow_missing = true")
        out[f"rewrite {x.table}.{x.column}"] = {"rewritten": rep.rewritten, "already": rep.already,
                                                "seconds": round(time.perf_counter() - t0, 3)}
    return out


def own_failed_migration(r: Resolved) -> dict | None:
    """The target's record of this go-live's last migration, when that migration ran to its end and failed
    (rejects over the limit, errors); None otherwise (an interrupted copy resumes by itself, and tables
    golive did not make are never replaced without drop_existing). The go-live's own migration report
    (``<state_dir>/go-live/<key>/migration.json``) names the run."""
    import json

    from golive import commands
    from golive.migrate import target as tgt

    try:
        run_key = json.loads((r.run_dir() / "migration.json").read_text(encoding="utf-8")).get("run_key")
    except (OSError, ValueError):
        return None
    if not run_key:
        return None
    dst = commands.parse_target(r.target)
    run = tgt.run_of(dst, run_key)
    if not run or run.get("status") != "failed":
        return None
    return {"run_key": run_key, "finished_at": run.get("finished_at")}


def validate_step(r: Resolved):
    from flows.validate import validate_migration
    from golive.validation.options import ValidateOptions

    m = r.config.migrate
    out = r.run_dir() / "validation"
    options = ValidateOptions(target_schema=r.config.target.schema_, identifiers=m.identifiers, workers=m.workers,
                              chunk_rows=m.chunk_rows, output_dir=str(out), report=str(r.run_dir() / "validation.json"))
    ok, rep, message = _state_result(validate_migration(r.source, r.target, options, return_state=True))
    rep = rep or {}
    return ok, {"ok": rep.get("ok"), "summary": rep.get("summary", message), "failures": rep.get("failures", [])[:10],
                "output_dir": str(out)}, message


def _files_params(r: Resolved, report: str):
    from flows.migrate_files import MigrateFilesParams

    c, t = r.config, r.config.target
    return MigrateFilesParams(source=c.source.uploads, dest=t.bucket or "", bucket_block=t.bucket_block,
                              credentials_block=t.credentials_block, endpoint_url=t.endpoint_url, region=t.region,
                              addressing_style=t.addressing_style, workers=c.files.workers,
                              state_dir=str(r.state_dir), follow_symlinks=c.files.follow_symlinks,
                              create_bucket=c.files.create_bucket, report_path=str(r.run_dir() / report))


def files_step(r: Resolved):
    from flows.migrate_files import migrate_files

    ok, rep, message = _state_result(migrate_files(_files_params(r, "files.json"), return_state=True))
    rep = rep.model_dump(mode="json") if hasattr(rep, "model_dump") else (rep or {})
    summary = {"uploaded": rep.get("uploaded"), "uploaded_bytes": rep.get("uploaded_bytes"),
               "unchanged": rep.get("unchanged"), "files": rep.get("files_total"),
               "problems": len(rep.get("problems", [])), "manifest": rep.get("manifest"), "dest": rep.get("dest"),
               "first_problems": [p.get("path") for p in rep.get("problems", [])[:10]]}
    return ok, summary, message


def verify_step(r: Resolved):
    from flows.verify_files import verify_files

    ok, rep, message = _state_result(verify_files(_files_params(r, "verify-files.json"), return_state=True))
    rep = rep.model_dump(mode="json") if hasattr(rep, "model_dump") else (rep or {})
    summary = {"matched": rep.get("matched"), "missing": len(rep.get("missing", [])),
               "different": len(rep.get("different", [])), "extra": len(rep.get("extra", [])),
               "not_compared": len(rep.get("not_compared", []))}
    return ok, summary, message


def rewrite_step(r: Resolved):
    from flows.rewrite_paths import RewritePathsParams, rewrite_paths

    columns, problems = [], []
    for rw in r.config.rewrite:
        params = RewritePathsParams(db=r.target, table=rw.table, column=rw.column, to=rw.template,
                                    strip_prefix=rw.strip_prefix, dest=r.bucket, state_dir=str(r.state_dir),
                                    batch_size=rw.batch_size,
                                    report_path=str(r.run_dir() / f"rewrite-{rw.table}-{rw.column}.json"))
        ok, rep, message = _state_result(rewrite_paths(params, return_state=True))
        if not ok:
            problems.append(f"{rw.table}.{rw.column}: {message}")
            continue
        columns.append({"table": rw.table, "column": rw.column, "rewritten": rep.rewritten, "already": rep.already,
                        "missing": rep.missing, "other": rep.other, "changed_since": rep.changed_since,
                        "missing_samples": [s.before for s in rep.missing_samples][:5]})
        if rep.changed_since:
            problems.append(f"{rw.table}.{rw.column}: {rep.changed_since} row(s) changed since they were rewritten")
        if rep.missing and not rw.allow_missing:
            problems.append(f"{rw.table}.{rw.column}: {rep.missing} row(s) name a file that was not uploaded "
                            f"(e.g. {rep.missing_samples[0].before if rep.missing_samples else '?'}); they keep their "
                            "value: restore the files and run again, or set allow_missing = true")
    return not problems, {"columns": columns}, "; ".join(problems)


# ---------------------------------------------------------------- dry run


def _dry_run(r: Resolved):
    plan = run_dry_run(r)
    write_json(r.run_dir() / "dry-run.json", plan)
    lines = [f"- **{glr.TITLES.get(k, k)}**: {v.get('line') or ('OK' if v.get('ok', True) else 'problems')}"
             for k, v in plan["steps"].items()]
    md = ("### Go-live dry run" + ("" if plan["ok"] else ": would FAIL") + "\n\n" + "\n".join(lines)
          + ("\n\n**Problems**\n\n" + "\n".join(f"- {e}" for e in plan["errors"]) if plan["errors"] else ""))
    from golive.urls import mask

    create_markdown_artifact(mask(md), key=artifact_key("go-live-plan", r.target),
                             description="dry run: " + ("OK" if plan["ok"] else "; ".join(plan["errors"][:2])))
    if not plan["ok"]:
        return Failed(message="dry run: " + "; ".join(plan["errors"][:3]), data=plan)
    return plan
