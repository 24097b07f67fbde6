"""Tell someone: the release's summary to webhooks, in the payload shape each receiver expects.

A target is ``[KIND+]URL``: a plain ``https://…``/``http://…`` URL gets the generic JSON; ``slack+``,
``feishu+``, ``lark+``, ``dingtalk+``, ``wecom+`` get their robot's shape. The URL part may be
``env:VAR`` (the variable holds it) or ``block:NAME`` (a Prefect Secret block holds it, read when the release
notifies: ``resolve_blocks``).
Feishu/Lark and DingTalk robots with signing enabled take their secret as a ``secret=`` query parameter of
the URL, which golive removes before sending and uses to sign (Feishu/Lark: ``timestamp`` and ``sign`` in
the body; DingTalk: in the query). Webhook URLs carry tokens: they are printed as scheme and host only.

| kind | body | success means |
|---|---|---|
| json | ``{"source": "golive", "event": "release", "state", "ok", "exit_code", "summary", …}`` | 2xx |
| slack | ``{"text", "blocks": [header, section (mrkdwn)]}`` (incoming webhook) | 2xx |
| feishu, lark | ``{"msg_type": "post", "content": {"post": {"en_us": {"title", "content"}}}}`` | ``code`` 0 |
| dingtalk | ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` | ``errcode`` 0 |
| wecom | ``{"msgtype": "markdown", "markdown": {"content"}}`` (group robot) | ``errcode`` 0 |
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from golive.errors import ConfigError
from golive.release.model import NotifyResult, ReleaseReport

log = logging.getLogger(__name__)

KINDS = ("json", "slack", "feishu", "lark", "dingtalk", "wecom")
ATTEMPTS = 3


@dataclass
class Target:
    kind: str
    url: str  # the URL to send to (secret: never printed)
    secret: str | None = None

    @property
    def label(self) -> str:
        return describe(self.kind, self.url)


def describe(kind: str, url: str) -> str:
    """``slack https://hooks.slack.com/…``: what a target is, without its token."""
    parts = urllib.parse.urlsplit(url)
    return f"{kind} {parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}/…"


def split_kind(value: str) -> tuple[str, str]:
    """``slack+https://…`` -> ("slack", "https://…"); a plain URL -> ("json", URL)."""
    head, sep, rest = value.partition("+")
    if sep and head.lower() in KINDS and (rest.startswith(("http://", "https://", "env:", "block:"))):
        return head.lower(), rest
    if value.startswith(("http://", "https://", "env:", "block:")):
        return "json", value
    import difflib

    close = difflib.get_close_matches(head.lower(), KINDS, n=1) if sep else []
    raise ConfigError(f"--notify {describe_raw(value)}: expected [KIND+]https://… (kinds: {', '.join(KINDS)})"
                      + (f"; did you mean {close[0]}+…?" if close else ""))


def describe_raw(value: str) -> str:
    if "://" in value:
        scheme, _, rest = value.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0].split('?', 1)[0]}/…"
    return value.split(":", 1)[0] + ":…"


def parse_target(value: str, env: dict | None = None) -> Target:
    """A target from ``[KIND+]URL`` with ``env:VAR`` resolved (``block:`` must be resolved by the caller)."""
    kind, rest = split_kind(value.strip())
    if rest.startswith("block:"):
        raise ConfigError(f"--notify {kind}+block:…: the Prefect Secret block is read first (resolve_blocks)")
    if rest.startswith("env:"):
        var = rest[4:].strip()
        got = (env if env is not None else os.environ).get(var)
        if not got:
            raise ConfigError(f"--notify {kind}+env:{var}: the environment variable {var} is not set")
        inner_kind, rest = split_kind(got.strip()) if "+" in got.split("://", 1)[0] else ("json", got.strip())
        if kind == "json":
            kind = inner_kind
    parts = urllib.parse.urlsplit(rest)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--notify {kind}: {describe_raw(rest)} is not an http(s) URL")
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    secret = next((v for k, v in query if k == "secret"), None)
    if secret is not None:
        query = [(k, v) for k, v in query if k != "secret"]
        rest = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))
    return Target(kind=kind, url=rest, secret=secret)


# ---------------------------------------------------------------- payloads

@dataclass
class Summary:
    title: str
    lines: list[str]
    data: dict


def summarize(report: ReleaseReport) -> Summary:
    icon = {0: "✅", 1: "↩️", 2: "⛔", 3: "🚨"}.get(report.exit_code, "")
    word = {"released": "released", "nothing-to-release": "nothing to release", "rolled-back": "FAILED, rolled back",
            "refused": "refused", "rollback-failed": "FAILED, ROLLBACK FAILED"}.get(report.state, report.state)
    title = f"{icon} golive release of {report.dbname or report.database}: {word}".strip()
    lines = [report.statement]
    applied = [r.label for r in report.runs if r.status == "applied"]
    if applied:
        lines.append(f"Applied: {', '.join(applied)}")
    if report.failed:
        lines.append(f"Failed at {report.failed.step}: {report.failed.message}")
    if report.rollback:
        lines.append(f"Rollback ({report.rollback.method}): {'done' if report.rollback.ok else 'FAILED'}"
                     + (f": {report.rollback.message}" if report.rollback.message else ""))
    if report.backup:
        lines.append(f"Backup: {report.backup.id}")
    blocking = [f for f in report.findings if f.blocks]
    if blocking:
        lines.append(f"Lint: {len(blocking)} blocking finding(s), e.g. {blocking[0].rule}: {blocking[0].message}")
    failed_checks = [c for c in report.prechecks if c.status == "fail"]
    for c in failed_checks[:3]:
        lines.append(f"Pre-check {c.id}: {c.message}")
    lines.append(f"Release {report.release_id} ({report.engine} {report.kind}, {report.seconds:.1f} s, exit "
                 f"{report.exit_code})")
    data = {"source": "golive", "event": "release", "release_id": report.release_id, "state": report.state,
            "ok": report.ok, "exit_code": report.exit_code, "database": report.database, "dbname": report.dbname,
            "engine": report.engine, "migrations": report.migrations, "summary": report.statement,
            "applied": applied, "failed": report.failed.model_dump() if report.failed else None,
            "rollback": report.rollback.model_dump() if report.rollback else None,
            "backup": report.backup.model_dump() if report.backup else None, "seconds": report.seconds}
    return Summary(title=title, lines=[ln for ln in lines if ln], data=data)


def payload(target: Target, summary: Summary, now: float | None = None) -> tuple[str, dict]:
    """(URL to POST to, JSON body) for ``target``'s kind, signed when it has a secret."""
    now = time.time() if now is None else now
    text = "\n".join(summary.lines)
    md = f"### {summary.title}\n\n" + "\n\n".join(summary.lines)
    url = target.url
    if target.kind == "slack":
        body = {"text": f"{summary.title}\n{text}",
                "blocks": [{"type": "header", "text": {"type": "plain_text", "text": summary.title[:150]}},
                           {"type": "section", "text": {"type": "mrkdwn", "text": text[:2900]}}]}
    elif target.kind in ("feishu", "lark"):
        body = {"msg_type": "post", "content": {"post": {"en_us": {
            "title": summary.title, "content": [[{"tag": "text", "text": line}] for line in summary.lines]}}}}
        if target.secret:
            ts = str(int(now))
            key = f"{ts}\n{target.secret}".encode("utf-8")
            body["timestamp"] = ts
            body["sign"] = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    elif target.kind == "dingtalk":
        body = {"msgtype": "markdown", "markdown": {"title": summary.title, "text": md}}
        if target.secret:
            ts = str(int(now * 1000))
            digest = hmac.new(target.secret.encode(), f"{ts}\n{target.secret}".encode(), hashlib.sha256).digest()
            sign = urllib.parse.quote_plus(base64.b64encode(digest).decode())
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={sign}"
    elif target.kind == "wecom":
        body = {"msgtype": "markdown", "markdown": {"content": md[:4000]}}
    else:
        body = dict(summary.data, title=summary.title, text=text)
    return url, body


def _accepted(kind: str, status: int, raw: bytes) -> tuple[bool, str]:
    if not 200 <= status < 300:
        return False, f"HTTP {status}"
    if kind in ("json", "slack"):
        return True, f"HTTP {status}"
    try:
        data = json.loads(raw.decode("utf-8") or "{}")
    except ValueError:
        return False, f"HTTP {status}, not JSON: {raw[:100]!r}"
    code = data.get("code", data.get("StatusCode")) if kind in ("feishu", "lark") else data.get("errcode")
    if code not in (0, None):
        return False, f"the robot refused it: {data.get('msg') or data.get('errmsg') or data}"
    return True, f"HTTP {status}"


def send(target: Target, summary: Summary, timeout: float = 10.0) -> NotifyResult:
    """POST the summary; retried twice (1 s, 2 s) on 5xx, 429 and connection errors."""
    detail = ""
    for attempt in range(1, ATTEMPTS + 1):
        url, body = payload(target, summary)
        req = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"), method="POST",
                                     headers={"Content-Type": "application/json; charset=utf-8",
                                              "User-Agent": "golive-release"})
        retry = False
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - the user's own webhook
                ok, detail = _accepted(target.kind, resp.status, resp.read(2000))
                if ok:
                    return NotifyResult(target=target.label, kind=target.kind, ok=True, detail=detail)
        except urllib.error.HTTPError as exc:
            detail = f"HTTP {exc.code}"
            retry = exc.code >= 500 or exc.code == 429
        except (urllib.error.URLError, OSError) as exc:
            detail = str(getattr(exc, "reason", exc))
            retry = True
        if not retry or attempt == ATTEMPTS:
            break
        time.sleep(attempt)
    log.warning("notification to %s failed: %s", target.label, detail)
    return NotifyResult(target=target.label, kind=target.kind, ok=False, detail=detail)


def resolve_blocks(values: list[str]) -> list[str]:
    """The notify values with ``block:NAME`` URL parts read from their Prefect Secret blocks (never stored)."""
    from golive.urls import resolve_secret

    out = []
    for raw in values:
        raw = raw.strip()
        kind, rest = split_kind(raw)
        if rest.startswith("block:"):
            rest = resolve_secret(rest)
            raw = rest if kind == "json" else f"{kind}+{rest}"
        out.append(raw)
    return out


def notify_all(values: list[str], report: ReleaseReport) -> list[NotifyResult]:
    return send_all(values, summarize(report))


def send_all(values: list[str], summary: Summary) -> list[NotifyResult]:
    """POST ``summary`` to every target in ``values``; a value that is not a target is a failed result."""
    out = []
    for value in values:
        try:
            target = parse_target(value)
        except ConfigError as exc:
            out.append(NotifyResult(target=describe_raw(value), kind="?", ok=False, detail=str(exc)))
            continue
        out.append(send(target, summary))
    return out
