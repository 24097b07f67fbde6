"""The health report as JSON, Markdown (also the Prefect artifact) and a standalone HTML page.

The HTML page is one file: styles inline, charts inline SVG (``charts.py``), no script, and a
Content-Security-Policy that forbids loading anything, so it opens the same offline, from a mail
attachment or from an S3 bucket.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from golive.errors import ConfigError
from golive.health import charts
from golive.health.model import SEVERITY_ORDER, DbReport
from golive.units import human_bytes, human_count

FORMATS = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html"}
ICON = {"critical": "🔴", "error": "⛔", "warning": "🟠", "info": "🔵", "ok": "🟢"}


def as_dict(report: DbReport) -> dict:
    """The report as JSON-ready data, with its counts, summary and exit code."""
    data = report.model_dump(mode="json")
    data.update(counts=report.counts(), summary=report.summary(), severity=report.severity, exit_code=report.exit_code)
    return data


def to_json(report: DbReport) -> str:
    return json.dumps(as_dict(report), indent=2, ensure_ascii=False, default=str)


def _problems(report: DbReport):
    items = [(c, f) for c in report.checks for f in c.findings if f.severity != "ok"]
    return sorted(items, key=lambda cf: (SEVERITY_ORDER[cf[1].severity], cf[0].id))


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: DbReport, *, max_fixes: int = 40) -> str:
    """Markdown: the summary, a table of findings (most serious first), their fixes, the largest tables."""
    c = report.counts()
    lines = [f"# Database report: {report.dbname}", "",
             f"{report.engine} {report.server_version} · {report.database} · {report.taken_at} · "
             f"{human_bytes(report.database_bytes)}", "",
             f"**{report.summary()}** — {c['critical']} critical, {c['warning']} warning, {c['info']} info"
             + (f", {c['error']} check(s) could not run" if c["error"] else ""), ""]
    problems = _problems(report)
    errors = [ch for ch in report.checks if ch.error]
    if problems or errors:
        lines += ["| severity | check | object | finding |", "|---|---|---|---|"]
        for ch in errors:
            lines.append(f"| {ICON['error']} error | {ch.id} | | {_md(ch.summary)} |")
        for ch, f in problems:
            lines.append(f"| {ICON[f.severity]} {f.severity} | {ch.id} | `{_md(f.object)}` | {_md(f.message)} |")
        fixes = [(ch, f) for ch, f in problems if f.fix and f.severity in ("critical", "warning")]
        if fixes:
            lines += ["", "## Fixes", ""]
            for ch, f in fixes[:max_fixes]:
                lines += [f"**{ch.id}** `{f.object}`", "", "```sql", f.fix, "```", ""]
            if len(fixes) > max_fixes:
                lines.append(f"... and {len(fixes) - max_fixes} more (see the JSON or HTML report)")
    else:
        lines.append("No findings.")
    passed = [ch for ch in report.checks if ch.severity == "ok" and not ch.error]
    if passed:
        lines += ["", "## Checks without findings", ""] + [f"- {ICON['ok']} {ch.title}: {ch.summary}" for ch in passed]
    tables = sorted((s for s in report.sizes if s.kind != "index"), key=lambda s: -s.bytes)[:10]
    if tables:
        lines += ["", "## Largest tables", "", "| table | size | rows | growth |", "|---|---:|---:|---:|"]
        for s in tables:
            g = s.growth
            lines.append(f"| `{_md(s.name)}` | {human_bytes(s.bytes)} | {human_count(s.row_count or 0)} | "
                         + ("" if g is None else f"{'+' if g >= 0 else '-'}{human_bytes(abs(g))}") + " |")
    for n in report.notes + ([report.history.note] if report.history.note else []):
        lines += ["", f"_{n}_"]
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#0f172a;background:#fff}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}header h1{margin:0 0 6px;font-size:22px}
header p{margin:0;color:#cbd5e1;font-size:13px}main{padding:8px 28px 40px;max-width:1180px}
h2{font-size:18px;margin:28px 0 10px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
h3{font-size:14px;margin:18px 0 6px;color:#334155}
.badges{margin-top:12px}.badge{display:inline-block;border-radius:10px;padding:2px 9px;margin-right:6px;font-size:12px;
font-weight:600;color:#fff}.critical{background:#b91c1c}.error{background:#7f1d1d}.warning{background:#c2410c}
.info{background:#1d4ed8}.ok{background:#15803d}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e2e8f0;padding:5px 8px;
text-align:left;vertical-align:top}th{background:#f1f5f9}td.num{text-align:right;white-space:nowrap}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:#f1f5f9;padding:6px 8px;margin:4px 0;white-space:pre-wrap;border-radius:4px}
details>summary{cursor:pointer}.check{margin:10px 0;border:1px solid #e2e8f0;border-radius:6px;padding:8px 12px}
.check>summary{font-weight:600}.muted{color:#64748b}.charts figure{margin:10px 0 18px}
figcaption{font-size:12px;color:#64748b}ul.passed{columns:2;font-size:13px}
"""


def _badge(sev: str, text: str | None = None) -> str:
    return f'<span class="badge {sev}">{escape(text or sev)}</span>'


def to_html(report: DbReport) -> str:
    """A standalone HTML page: summary, charts of sizes over time, findings with their fixes, sizes."""
    c = report.counts()
    h = report.history
    e = escape
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
             'img-src data:">', '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Database report: {e(report.dbname)}</title><style>{CSS}</style></head><body>",
             f"<header><h1>Database report: {e(report.dbname)}</h1><p>{e(report.engine)} {e(report.server_version)} · "
             f"{e(report.database)} · taken {e(report.taken_at)} · {human_bytes(report.database_bytes)} · "
             f"{report.seconds:.1f} s</p><div class=\"badges\">"
             + "".join(_badge(s, f"{c[s]} {s}") for s in ("critical", "error", "warning", "info") if c[s] or s != "error")
             + "</div></header><main>"]
    # sizes over time
    parts.append('<section class="charts" id="charts"><h2>Sizes over time</h2>')
    if h.snapshots <= 1:
        parts.append(f'<p class="muted">{h.snapshots or "No"} snapshot{"" if h.snapshots == 1 else "s"} so far: each '
                     "report adds one (the database-report deployment runs daily), and the lines grow from there.</p>")
    parts.append(_figure(charts.line_chart({report.dbname: h.database}, title="Database size", chart_id="chart-database"),
                         "Database size at each report"))
    parts.append(_figure(charts.line_chart(h.tables, title="Largest tables", chart_id="chart-tables"),
                         "The largest tables now (with indexes and TOAST), at each report"))
    if h.indexes:
        parts.append(_figure(charts.line_chart(h.indexes, title="Largest indexes", chart_id="chart-indexes"),
                             "The largest indexes now, at each report"))
    tables = sorted((s for s in report.sizes if s.kind != "index"), key=lambda s: -s.bytes)[:12]
    bars = [(s.name, [("table", s.table_bytes), ("indexes", s.index_bytes), ("TOAST", s.toast_bytes)]) for s in tables]
    parts.append(_figure(charts.bar_chart(bars, title="Largest tables now", chart_id="chart-current"),
                         "Where the space is now"))
    parts.append("</section>")
    # findings
    parts.append('<section id="findings"><h2>Findings</h2>')
    by_check = {}
    for ch, f in _problems(report):
        by_check.setdefault(ch.id, (ch, []))[1].append(f)
    errors = [ch for ch in report.checks if ch.error]
    if not by_check and not errors:
        parts.append('<p>No findings.</p>')
    for ch in errors:
        parts.append(f'<details class="check" open data-check="{e(ch.id)}"><summary>{_badge("error")} {e(ch.title)}'
                     f'</summary><p>{e(ch.summary)}</p></details>')
    for ch, findings in sorted(by_check.values(), key=lambda x: SEVERITY_ORDER[x[0].severity]):
        parts.append(f'<details class="check" open data-check="{e(ch.id)}"><summary>{_badge(ch.severity)} '
                     f'{e(ch.title)} <span class="muted">— {e(ch.summary)}</span></summary>'
                     f'<p class="muted">{e(ch.doc)}</p><table><tr><th>severity</th><th>object</th><th>finding</th>'
                     "<th>fix</th></tr>")
        for f in findings:
            evidence = json.dumps(f.evidence, indent=1, ensure_ascii=False, default=str)
            parts.append(f'<tr class="finding sev-{f.severity}"><td>{_badge(f.severity)}</td><td><code>{e(f.object)}</code></td>'
                         f"<td>{e(f.message)}<details><summary class=\"muted\">evidence</summary><pre>{e(evidence)}</pre>"
                         f"</details></td><td>{'<pre>' + e(f.fix) + '</pre>' if f.fix else ''}</td></tr>")
        parts.append("</table></details>")
    parts.append("</section>")
    passed = [ch for ch in report.checks if ch.severity == "ok" and not ch.error]
    if passed:
        parts.append('<section id="passed"><h2>Checks without findings</h2><ul class="passed">'
                     + "".join(f"<li>{_badge('ok', 'ok')} {e(ch.title)}: <span class=\"muted\">{e(ch.summary)}</span></li>"
                               for ch in passed) + "</ul></section>")
    parts.append('<section id="sizes"><h2>Largest tables</h2><table><tr><th>table</th><th>size</th><th>table</th>'
                 "<th>indexes</th><th>TOAST</th><th>rows</th><th>growth</th></tr>")
    for s in tables:
        g = s.growth
        parts.append(f"<tr><td><code>{e(s.name)}</code></td><td class=num>{human_bytes(s.bytes)}</td>"
                     f"<td class=num>{human_bytes(s.table_bytes)}</td><td class=num>{human_bytes(s.index_bytes)}</td>"
                     f"<td class=num>{human_bytes(s.toast_bytes)}</td><td class=num>{human_count(s.row_count or 0)}</td>"
                     f"<td class=num>{'' if g is None else ('+' if g >= 0 else '-') + human_bytes(abs(g))}</td></tr>")
    parts.append("</table></section>")
    notes = report.notes + ([h.note] if h.note else [])
    parts.append("<footer><h2>Notes</h2><ul>" + "".join(f"<li>{e(n)}</li>" for n in notes)
                 + f"<li>History: {e(h.table or '-')}, {h.snapshots} snapshot(s).</li>"
                 "<li>Generated by golive report db.</li></ul></footer></main></body></html>")
    return "\n".join(parts)


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"


def format_of(path: str) -> str:
    """``json``, ``markdown`` or ``html`` from the file name; ConfigError otherwise."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConfigError(f"--out {path}: write the report to a .html, .md or .json file")
    return fmt


def write(report: DbReport, path: str) -> str:
    """Write ``report`` to ``path`` in the format its extension names (atomically); return the path."""
    fmt = format_of(path)
    text = {"json": to_json, "markdown": to_markdown, "html": to_html}[fmt](report)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return str(p)
