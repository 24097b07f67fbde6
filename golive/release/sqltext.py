"""Migration SQL as statements: split a script, strip its comments, read the names it touches.

A small scanner rather than a parser: it knows the lexical rules that decide where a statement ends (quotes,
doubled quotes, ``--`` and ``/* */`` comments) and reads the rest from the engine's ``Release.syntax``
(``golive.model.release.SqlSyntax``: ``#`` comments, backslash escapes, dollar quoting, the client's ``DELIMITER``
directive, the case of unquoted names), which is all splitting needs. The lint rules then read each statement with
regular expressions over its comment-free, whitespace-collapsed text (``Statement.clean``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from golive.dialects import get_dialect
from golive.model.release import SqlSyntax

if TYPE_CHECKING:
    from golive.dialects.base import Dialect

def read_sql(path) -> str:
    """The text of a SQL file: UTF-8, a byte-order mark (editors on Windows write one) left out, so the first
    statement is not "\\ufeffCREATE"; a file that is not UTF-8 is one line naming it and where."""
    from pathlib import Path

    from golive.errors import ConfigError

    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read ({exc.strerror})") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{p}: not UTF-8 (byte {data[exc.start]:#04x} on line {line}); save it as UTF-8") from None


_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_DELIMITER = re.compile(r"^[ \t]*DELIMITER[ \t]+(\S+)[ \t]*$", re.I | re.M)


@dataclass
class Statement:
    """One statement of a script: its text as written, where it starts, and its text for the lint rules."""

    text: str
    line: int
    clean: str = ""
    index: int = 0  # 1-based position in the script

    def __post_init__(self) -> None:
        if not self.clean:
            self.clean = clean(self.text)

    @property
    def upper(self) -> str:
        return self.clean.upper()

    def short(self, n: int = 160) -> str:
        one = self.clean or re.sub(r"\s+", " ", self.text).strip()
        return one if len(one) <= n else one[: n - 1] + "…"


def syntax_of(dialect: "Dialect | str") -> SqlSyntax:
    """How migration SQL reads on ``dialect`` (a dialect, or its registry name)."""
    return (get_dialect(dialect) if isinstance(dialect, str) else dialect).release.syntax


def split(sql: str, dialect: "Dialect | str") -> list[Statement]:
    """The statements of ``sql`` (empty ones and comment-only ones dropped), each with its first line."""
    syntax = syntax_of(dialect)
    out: list[Statement] = []
    delimiter = ";"
    i, n = 0, len(sql)
    start = 0
    hashes = syntax.hash_comments

    def emit(end: int) -> None:
        text = sql[start:end].strip()
        if text and clean(text):
            line = sql.count("\n", 0, _first_code(sql, start, end, hashes)) + 1
            out.append(Statement(text=text, line=line, index=len(out) + 1))

    while i < n:
        ch = sql[i]
        if syntax.delimiter_directive and (i == 0 or sql[i - 1] == "\n"):
            m = _DELIMITER.match(sql, i)
            if m:
                emit(i)
                delimiter = m.group(1)
                i = m.end()
                start = i
                continue
        if sql.startswith(delimiter, i):
            emit(i)
            i += len(delimiter)
            start = i
            continue
        if ch == "-" and sql.startswith("--", i) or (hashes and ch == "#"):
            j = sql.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "/" and sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if ch in ("'", '"', "`"):
            escapes = syntax.backslash_escapes and ch != "`" or (ch == "'" and _is_e_string(sql, i))
            i = _skip_quoted(sql, i, backslash=escapes)
            continue
        if ch == "$" and syntax.dollar_quotes:
            m = _DOLLAR.match(sql, i)
            if m and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                tag = m.group(0)
                j = sql.find(tag, m.end())
                i = n if j < 0 else j + len(tag)
                continue
        i += 1
    emit(n)
    return out


def _first_code(sql: str, i: int, end: int, hashes: bool) -> int:
    """The position of the first character in sql[i:end] that is neither whitespace nor a comment."""
    while i < end:
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i) or (hashes and sql[i] == "#"):
            j = sql.find("\n", i)
            i = end if j < 0 else j + 1
        elif sql.startswith("/*", i) and not sql.startswith("/*!", i):
            j = sql.find("*/", i + 2)
            i = end if j < 0 else j + 2
        else:
            return i
    return i


def _is_e_string(sql: str, i: int) -> bool:
    return i > 0 and sql[i - 1] in "eE" and (i < 2 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))


def _skip_quoted(sql: str, i: int, *, backslash: bool) -> int:
    q = sql[i]
    j = i + 1
    n = len(sql)
    while j < n:
        c = sql[j]
        if backslash and c == "\\":
            j += 2
            continue
        if c == q:
            if j + 1 < n and sql[j + 1] == q:  # doubled quote
                j += 2
                continue
            return j + 1
        j += 1
    return n


def clean(text: str) -> str:
    """``text`` without comments, string contents kept, whitespace collapsed to single spaces."""
    out = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i) or ch == "#" and _hash_comment(text, i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            out.append(" ")
            continue
        if ch == "/" and text.startswith("/*", i) and not text.startswith("/*!", i):
            j = text.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
            continue
        if ch in ("'", '"', "`"):
            j = _skip_quoted(text, i, backslash=False)
            out.append(text[i:j])
            i = j
            continue
        if ch == "$":
            m = _DOLLAR.match(text, i)
            if m:
                j = text.find(m.group(0), m.end())
                j = n if j < 0 else j + len(m.group(0))
                out.append(text[i:j])
                i = j
                continue
        out.append(ch)
        i += 1
    return re.sub(r"\s+", " ", "".join(out)).strip()


def _hash_comment(text: str, i: int) -> bool:
    # MySQL's # comments; PostgreSQL uses # as an operator, but never at the start of a line
    return i == 0 or text[i - 1] == "\n"


# ---------------------------------------------------------------- names

_IDENT = r'(?:"(?:[^"]|"")+"|`(?:[^`]|``)+`|[A-Za-z_][A-Za-z0-9_$]*)'
QUALIFIED = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_IDENT_RE = re.compile(_IDENT)


def parse_name(text: str, dialect: "Dialect | str", default_schema: str | None = None) -> tuple[str | None, str]:
    """(schema, name) of a possibly qualified identifier as the server resolves it: unquoted names fold to
    lower case where the engine folds them (PostgreSQL); else they are kept (MySQL table names are case-sensitive
    on Linux)."""
    folds = syntax_of(dialect).folds_unquoted
    parts = [_unquote(p, folds) for p in _IDENT_RE.findall(text)]
    if not parts:
        return default_schema, ""
    if len(parts) == 1:
        return default_schema, parts[0]
    return parts[-2], parts[-1]


def _unquote(ident: str, folds: bool) -> str:
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    if ident.startswith("`"):
        return ident[1:-1].replace("``", "`")
    return ident.lower() if folds else ident


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on ``sep`` outside parentheses and quotes (ALTER TABLE's list of actions)."""
    parts, depth, cur, i, n = [], 0, [], 0, len(text)
    while i < n:
        ch = text[i]
        if ch in ("'", '"', "`"):
            j = _skip_quoted(text, i, backslash=False)
            cur.append(text[i:j])
            i = j
            continue
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
        i += 1
    if "".join(cur).strip():
        parts.append("".join(cur).strip())
    return parts


def directive(sql: str, name: str) -> bool:
    """A ``-- golive:NAME`` comment line in a migration (``-- golive:no-transaction``)."""
    return re.search(rf"^\s*--\s*golive:\s*{re.escape(name)}\b", sql, re.I | re.M) is not None
