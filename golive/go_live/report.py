"""The go-live's final report: every step's outcome, counts and times, and where everything is.

Written as JSON (``<state_dir>/go-live/<key>/report.json``) and as a markdown artifact
(``go-live-<target database>``) after every run, also a failed one, so it always says what state things are in.
"""

from __future__ import annotations

import datetime as dt

from golive.go_live.state import Journal
from golive.urls import mask

TITLES = {"precheck": "Pre-check", "backup": "Backup of the source", "migrate-db": "Migrate the database",
          "validate": "Validate the copy", "migrate-files": "Upload the files", "verify-files": "Verify the files",
          "rewrite-paths": "Rewrite file paths", "report": "Report"}


def line(step: str, summary: dict) -> str:
    """One line per step for the CLI, the status command and the artifact."""
    s = summary or {}
    if step == "precheck":
        warn = sum(1 for c in s.get("checks", []) if c["level"] == "warning")
        return (f"{s.get('tables', 0)} tables, {s.get('rows', 0)} rows, {s.get('files', 0)} files"
                + (", target resumable" if s.get("resumable") else "") + (f", {warn} warning(s)" if warn else ""))
    if step == "backup":
        return f"{s.get('id', '?')} at {s.get('url', '?')}" + (f", verified: {s['verified']}" if s.get("verified") else "")
    if step == "migrate-db":
        return (f"{s.get('rows_written', 0)} rows written, {s.get('rows_rejected', 0)} rejected, "
                f"{s.get('tables', 0)} tables" + (" (resumed)" if s.get("resumed") else ""))
    if step == "validate":
        return s.get("summary", "")
    if step == "migrate-files":
        return (f"{s.get('uploaded', 0)} uploaded, {s.get('unchanged', 0)} unchanged, "
                f"{s.get('problems', 0)} problem(s)")
    if step == "verify-files":
        return (f"{s.get('matched', 0)} matched, {s.get('missing', 0)} missing, {s.get('different', 0)} different, "
                f"{s.get('extra', 0)} extra")
    if step == "rewrite-paths":
        return "; ".join(f"{c['table']}.{c['column']}: {c['rewritten']} rewritten, {c['already']} already, "
                         f"{c['missing']} missing file" for c in s.get("columns", []))
    return s.get("path", "")


def build(journal: Journal, steps: list[str], *, where: dict, config_summary: dict) -> dict:
    """The report: ``ok`` (every step done), each step's status, times, error and summary, and ``where``."""
    out = []
    for step in steps:
        e = journal.data["steps"].get(step, {})
        seconds = None
        if e.get("started_at") and e.get("finished_at"):
            seconds = (dt.datetime.fromisoformat(e["finished_at"]) - dt.datetime.fromisoformat(e["started_at"])
                       ).total_seconds()
        out.append({"step": step, "title": TITLES.get(step, step), "status": e.get("status", "pending"),
                    "started_at": e.get("started_at"), "finished_at": e.get("finished_at"), "seconds": seconds,
                    "error": e.get("error"), "line": line(step, e.get("summary")) if e.get("summary") else "",
                    "summary": e.get("summary", {})})
    failed = next((s for s in out if s["status"] == "failed"), None)
    pending = [s["step"] for s in out if s["status"] != "done" and s["step"] != "report"]
    return {"ok": not pending, "key": journal.key, "failed_step": failed["step"] if failed else None,
            "error": failed["error"] if failed else None, "pending": pending,
            "state": state_sentence(out), "steps": out, "where": {k: mask(str(v)) for k, v in where.items() if v},
            "config": config_summary, "journal": str(journal.path)}


def state_sentence(steps: list[dict]) -> str:
    """What state things are in, in one sentence (a failed go-live must say exactly that)."""
    done = [s["step"] for s in steps if s["status"] == "done" and s["step"] != "report"]
    failed = next((s for s in steps if s["status"] == "failed"), None)
    running = next((s for s in steps if s["status"] == "running"), None)
    left = [s["step"] for s in steps if s["status"] != "done" and s["step"] != "report"]
    if not left:
        return "go-live complete: every step done"
    parts = [f"done: {', '.join(done)}" if done else "nothing done yet"]
    if failed:
        parts.append(f"failed at {failed['step']}: {failed['error']}")
        consequence = {
            "migrate-db": "the target holds this migration's copy as far as it got (the migration report says what "
                          "is in); the next run resumes an interrupted copy, and replaces one that finished with "
                          "rejects or errors",
            "validate": "the target holds a complete copy that does not match the source; nothing after it ran",
            "migrate-files": "some files are uploaded; the next run uploads only the rest",
            "verify-files": "the files are uploaded but the bucket differs from the folder; paths are not rewritten",
            "rewrite-paths": "some rows point at the uploaded objects (recorded in _golive_path_map, reversible with "
                             "golive rewrite-paths --reverse); the others keep their local paths",
        }.get(failed["step"], "nothing was changed by that step")
        parts.append(consequence)
    elif running:
        parts.append(f"interrupted during {running['step']} (the next run resumes it)")
    parts.append(f"still to do: {', '.join(left)}")
    return "; ".join(parts)


def markdown(report: dict) -> str:
    status = "COMPLETE" if report["ok"] else ("FAILED at " + report["failed_step"] if report["failed_step"]
                                              else "INCOMPLETE")
    md = [f"### Go-live {status}", "", report["state"], "", "| step | status | seconds | outcome |",
          "|---|---|---|---|"]
    for s in report["steps"]:
        outcome = s["error"] if s["status"] == "failed" else s["line"]
        secs = f"{s['seconds']:.1f}" if s["seconds"] is not None else ""
        md.append(f"| {s['title']} | {s['status']} | {secs} | {(outcome or '').replace('|', '/')} |")
    if report["where"]:
        md += ["", "**Where everything is**", ""] + [f"- {k}: `{v}`" for k, v in report["where"].items()]
    return mask("\n".join(md)) + "\n"
