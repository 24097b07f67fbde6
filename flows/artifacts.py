"""Artifact keys: one key per database (or bucket) and job, so each key's history in the Prefect UI is one
database's story.

Prefect keeps the latest artifact of a key on the Artifacts page and its history under that key; a key
shared by every migration of every app mixes unrelated runs. Every golive flow names its artifacts with
``artifact_key(job, url, *extra)``: ``migration-tables-app``, ``validation-summary-app-billing`` (schema
``billing``), ``files-upload-app-media-uploads``. Each run's own artifacts stay on its run page whatever
their key.

Keys hold lowercase letters, digits and dashes (Prefect's rule). They are built from the database
name (or bucket and prefix, or file name), never from the user, password, host or query of the URL.
"""

from __future__ import annotations

import hashlib
import re

MAX_KEY = 80  # Prefect sets no limit; the UI shows about this much


def slug(text: str) -> str:
    """``text`` as lowercase letters, digits and single dashes (``My_App.db`` → ``my-app-db``); a name that
    loses other characters (accents, other scripts, symbols) gets 6 hex digits of its SHA-1, so two such
    names keep apart."""
    text = str(text or "").strip()
    out = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    if re.sub(r"[^a-z0-9]+", "", text.lower()) != re.sub(r"[-_. ]+", "", text.lower()):
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:6]
        out = f"{out}-{digest}" if out else digest
    return out


def subject(url) -> str:
    """The part of a URL that names what it is about, without anything secret.

    ``postgresql://app:pw@db/shop`` → ``shop``; ``sqlite:///srv/app/app.db`` → ``app``; ``embedded://demo/pgdata``
    → ``pgdata``; ``mysql://root@h/test`` → ``test``; ``s3://media/uploads/2024`` → ``media-uploads-2024``;
    ``file:///srv/files`` → ``files``; ``block:prod-db`` (unresolved) → ``prod-db``.
    """
    from pathlib import PurePosixPath

    from golive.urls import secret
    from golive.errors import ConfigError
    from golive.urls import parse_url

    raw = secret(url).strip()
    if raw.startswith("block:"):
        return slug(raw[len("block:"):]) or "block"
    scheme = raw.split("://", 1)[0].lower() if "://" in raw else ""
    if scheme in ("s3", "s3a"):
        bucket, _, prefix = raw.split("://", 1)[1].partition("/")
        return "-".join(p for p in (slug(bucket), *(slug(s) for s in prefix.split("/") if s)) if p) or "s3"
    if scheme == "file":
        return slug(PurePosixPath(raw.split("://", 1)[1]).name) or "files"
    try:
        u = parse_url(raw)
    except ConfigError:
        return "database"
    return slug(u.name or "") or u.dialect


def artifact_key(job: str, url=None, *extra: str | None, schema: str | None = None) -> str:
    """``<job>-<subject of url>[-<extra>...]``, a valid Prefect artifact key without secrets.

    Args:
        job: what the artifact is, e.g. ``migration-tables``, ``validation-summary``, ``files-upload``.
        url: the database (or destination) URL it is about: ``str``, ``SecretStr`` or masked; None for none.
        extra: further names (table, column); None and ``""`` are left out.
        schema: the database schema, added unless it is ``public`` (PostgreSQL's default).
    """
    parts = [slug(job)]
    if url is not None and str(url):
        parts.append(subject(url))
    if schema and schema != "public":
        parts.append(slug(schema))
    parts += [slug(e) for e in extra if e]
    key = "-".join(p for p in parts if p)
    if len(key) > MAX_KEY:  # keep it readable and unique
        key = key[:MAX_KEY - 7].rstrip("-") + "-" + hashlib.sha1(key.encode()).hexdigest()[:6]
    return key


# ---------------------------------------------------------------- the files flows' artifacts

LISTED = 20  # paths shown per list in an artifact; the JSON report has them all


def _md_list(title: str, items: list[str]) -> str:
    if not items:
        return ""
    more = f"\n- … and {len(items) - LISTED} more (see the JSON report)" if len(items) > LISTED else ""
    return f"\n**{title}** ({len(items)})\n\n" + "\n".join(f"- `{i}`" for i in items[:LISTED]) + more + "\n"


def publish_upload(report) -> str:
    """Markdown artifact ``files-upload-<bucket>-<prefix>`` for a ``migrate-files`` run; returns its key."""
    from prefect.artifacts import create_markdown_artifact

    from golive.urls import mask

    key = artifact_key("files-upload", report.dest)
    status = "OK" if report.ok else "INCOMPLETE"
    md = (f"### Upload {status}: `{mask(report.source)}` → `{report.dest}`\n\n"
          "| uploaded | bytes | unchanged | problems | seconds |\n|---|---|---|---|---|\n"
          f"| {report.uploaded} | {report.uploaded_bytes} | {report.unchanged} | {len(report.problems)} "
          f"| {report.seconds:.1f} |\n" + _md_list("Not uploaded", [p.line() for p in report.problems]))
    create_markdown_artifact(md, key=key, description=f"{status}: {report.summary()}")
    return key


def publish_verify(report) -> str:
    """Markdown artifact ``files-verify-<bucket>-<prefix>`` for a ``verify-files`` run; returns its key."""
    from prefect.artifacts import create_markdown_artifact

    key = artifact_key("files-verify", report.dest)
    status = "OK" if report.ok else "DIFFERENT"
    md = (f"### Verify {status}: `{report.source}` vs `{report.dest}`\n\n"
          "| matched | missing | different | extra | not compared |\n|---|---|---|---|---|\n"
          f"| {report.matched} | {len(report.missing)} | {len(report.different)} | {len(report.extra)} "
          f"| {len(report.not_compared)} |\n" + _md_list("Missing", report.missing)
          + _md_list("Different", [f"{d.path}: {d.reason}" for d in report.different])
          + _md_list("Extra (in the destination only)", report.extra))
    create_markdown_artifact(md, key=key, description=f"{status}: {report.summary()}")
    return key


def publish_rewrite(report) -> str:
    """Markdown artifact ``rewrite-paths-<db>-<table>-<column>`` for a ``rewrite-paths`` run; returns its key."""
    from prefect.artifacts import create_markdown_artifact

    key = artifact_key("rewrite-paths", report.db, report.table, report.column)
    verb = "Reverse" if report.reverse else "Rewrite"
    md = (f"### {verb}{' (dry run)' if report.dry_run else ''}: `{report.table}.{report.column}` → "
          f"`{report.to}`\n\n| scanned | rewritten | already | missing file | left alone | changed since |\n"
          "|---|---|---|---|---|---|\n"
          f"| {report.scanned} | {report.rewritten} | {report.already} | {report.missing} | {report.other} "
          f"| {report.changed_since} |\n")
    create_markdown_artifact(md, key=key, description=("OK" if report.exit_code == 0 else "INCOMPLETE")
                             + f": {report.rewritten} rewritten, {report.missing} with a missing file")
    return key
